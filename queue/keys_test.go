package queue

import (
	"context"
	"strings"
	"testing"

	"github.com/duroworker/duroworker/internal/redistest"
)

// crc16 is CRC-16/XMODEM (poly 0x1021, init 0), the checksum Redis Cluster
// uses for key slots.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// keySlot is Redis Cluster's HASH_SLOT: the CRC16 of the hash tag (the part
// between the first '{' and the next '}', if non-empty) or of the whole key.
func keySlot(key string) uint16 {
	if open := strings.IndexByte(key, '{'); open >= 0 {
		if end := strings.IndexByte(key[open+1:], '}'); end > 0 {
			key = key[open+1 : open+1+end]
		}
	}
	return crc16(key) % 16384
}

func TestKeySlotMatchesRedis(t *testing.T) {
	// Reference values from Redis (CLUSTER KEYSLOT) and the CRC-16/XMODEM check value.
	if got := crc16("123456789"); got != 0x31C3 {
		t.Fatalf("crc16(123456789) = %#x, want 0x31c3", got)
	}
	tests := []struct {
		key  string
		want uint16
	}{
		{"foo", 12182},
		{"{user1000}.following", 3443},
		{"{user1000}.followers", 3443},
		{"{dw}", 2462},
		{"foo{}{bar}", 8363}, // empty tag: whole key hashed
	}
	for _, tt := range tests {
		if got := keySlot(tt.key); got != tt.want {
			t.Errorf("keySlot(%q) = %d, want %d", tt.key, got, tt.want)
		}
	}
}

// TestKeySlotsOnClusterServer asks a real cluster-enabled redis-server for the
// slot of every key (miniredis's CLUSTER KEYSLOT always answers 163).
func TestKeySlotsOnClusterServer(t *testing.T) {
	srv := redistest.StartWith(t, redistest.Config{Args: []string{"--cluster-enabled", "yes"}})
	rdb := srv.Client(t)
	ctx := context.Background()
	for name, key := range allKeys(NewKeys("")) {
		got, err := rdb.ClusterKeySlot(ctx, key).Result()
		if err != nil {
			t.Fatalf("CLUSTER KEYSLOT %q: %v", key, err)
		}
		if want := int64(keySlot(key)); got != want || got != 2462 {
			t.Errorf("%s = %q: server slot %d, computed %d, want both 2462", name, key, got, want)
		}
	}
}

// allKeys returns the output of every key builder for awkward sample values.
func allKeys(k Keys) map[string]string {
	const id = "inst{with}:braces}"
	const bucket = "x:billing@1.0.2@0.1.0{z}"
	return map[string]string{
		"Prefix":              k.Prefix(),
		"InstanceKey":         k.InstanceKey(id),
		"InboxKey":            k.InboxKey(id),
		"HistoryKey":          k.HistoryKey(id, 7),
		"ReadyKey":            k.ReadyKey(bucket),
		"WorkStreamKey":       k.WorkStreamKey("a:SendEmail"),
		"WorkDelayKey":        k.WorkDelayKey("a:SendEmail"),
		"workDueKey":          k.workDueKey(),
		"WorkItemKey":         k.WorkItemKey("42"),
		"timersKey":           k.timersKey(),
		"EnginesKey":          k.EnginesKey(),
		"seqKey":              k.seqKey(),
		"fetchOrchRequestKey": k.fetchOrchRequestKey("r{1}"),
		"fetchWorkRequestKey": k.fetchWorkRequestKey("r{1}"),
		"requestKey":          k.requestKey("r{1}"),
		"WakeOrchChannel":     k.WakeOrchChannel(),
		"EndedChannel":        k.EndedChannel(),
		"OrchBucketsKey":      k.OrchestrationBucketsKey(),
		"workBucketsKey":      k.workBucketsKey(),
		"NodesKey":            k.NodesKey(),
		"statusIndexKey":      k.statusIndexKey("Completed"),
		"nodeKey":             k.nodeKey("n{1}"),
		"childrenKey":         k.childrenKey(id),
		"WorkMapKey":          k.WorkMapKey(id),
		"kvKey":               k.kvKey(id),
		"kvDeltaKey":          k.kvDeltaKey(id),
		"instancesKey":        k.instancesKey(),
		"executionsKey":       k.executionsKey(id),
		"StatsKey":            k.StatsKey(),
	}
}

func TestKeysShareOneSlot(t *testing.T) {
	for _, prefix := range []string{"", "dw", "tenant-a", "x:y"} {
		k := NewKeys(prefix)
		want := prefix
		if want == "" {
			want = DefaultPrefix
		}
		slot := keySlot("{" + want + "}")
		for name, key := range allKeys(k) {
			if !strings.HasPrefix(key, "{"+want+"}:") {
				t.Errorf("prefix %q: %s = %q does not start with {%s}:", prefix, name, key, want)
			}
			if got := keySlot(key); got != slot {
				t.Errorf("prefix %q: %s = %q is in slot %d, want %d", prefix, name, key, got, slot)
			}
		}
	}
}

func TestKeyNames(t *testing.T) {
	k := NewKeys("")
	tests := []struct{ got, want string }{
		{k.InstanceKey("i1"), "{dw}:inst:i1"},
		{k.InboxKey("i1"), "{dw}:inbox:i1"},
		{k.HistoryKey("i1", 3), "{dw}:hist:i1:3"},
		{k.ReadyKey("o:billing"), "{dw}:ready:o:billing"},
		{k.WorkStreamKey("a:SendEmail"), "{dw}:wq:a:SendEmail"},
		{k.WorkDelayKey("a:SendEmail"), "{dw}:wqd:a:SendEmail"},
		{k.workDueKey(), "{dw}:wqdue"},
		{k.WorkItemKey("9"), "{dw}:wi:9"},
		{k.timersKey(), "{dw}:timers"},
		{k.EnginesKey(), "{dw}:engines"},
		{k.seqKey(), "{dw}:seq"},
		{k.fetchOrchRequestKey("r1"), "{dw}:fr:o:r1"},
		{k.fetchWorkRequestKey("r1"), "{dw}:fr:w:r1"},
		{k.requestKey("r1"), "{dw}:req:r1"},
		{k.WakeOrchChannel(), "{dw}:wake:orch"},
		{k.EndedChannel(), "{dw}:ended"},
		{k.childrenKey("i1"), "{dw}:children:i1"},
		{k.statusIndexKey("Failed"), "{dw}:bystatus:Failed"},
		{k.WorkMapKey("i1"), "{dw}:wimap:i1"},
		{k.kvKey("i1"), "{dw}:kv:i1"},
		{k.kvDeltaKey("i1"), "{dw}:kvd:i1"},
		{k.instancesKey(), "{dw}:instances"},
		{k.executionsKey("i1"), "{dw}:execs:i1"},
		{k.StatsKey(), "{dw}:stats"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("key = %q, want %q", tt.got, tt.want)
		}
	}
}

func TestNewKeysRejectsBraces(t *testing.T) {
	for _, prefix := range []string{"a{b", "a}b", "{dw}"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewKeys(%q) did not panic", prefix)
				}
			}()
			NewKeys(prefix)
		}()
	}
}
