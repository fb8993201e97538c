package queue

import (
	"strings"
	"testing"
)

// TestAckWrongTypeHistoryWritesNothing: an ack (not poison) whose history
// key holds another type fails with HISTORY_UNREADABLE and writes nothing:
// the lock, the inbox, the instance fields, the work buckets and the
// key itself are as before. ack_orch.lua no longer asks TYPE on every ack;
// it appends the first events with pcall as its first write, so this holds
// with events and, through the TYPE check kept for it, without.
func TestAckWrongTypeHistoryWritesNothing(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		for _, events := range [][]string{{"e1", "e2"}, nil} {
			id := "i" + string(rune('0'+len(events)))
			e.create(id, "o:b", "start")
			it := e.fetchOne("o:b", longLock)
			hk := e.k.HistoryKey(id, 1)
			if err := e.rdb.Set(e.ctx, hk, "not a list", 0).Err(); err != nil {
				t.Fatal(err)
			}
			before, err := e.rdb.HGetAll(e.ctx, e.k.InstanceKey(id)).Result()
			if err != nil {
				t.Fatal(err)
			}
			err = e.s.AckOrchestration(e.ctx, OrchestrationAck{InstanceID: id, Token: it.Token, ExecutionID: 1,
				Status: StatusRunning, NewEvents: events, EnginePin: "0.1.0", Name: "billing", Version: "1.0.0",
				Activities: []WorkItem{{Bucket: "a:x", Body: "w"}},
				Timers:     []Timer{{DueAt: e.serverNow(), Body: "t"}}})
			if err == nil || !strings.Contains(err.Error(), "HISTORY_UNREADABLE") {
				t.Fatalf("%d events: ack error %v, want HISTORY_UNREADABLE", len(events), err)
			}
			after, err := e.rdb.HGetAll(e.ctx, e.k.InstanceKey(id)).Result()
			if err != nil {
				t.Fatal(err)
			}
			wantEqual(t, "instance fields", before, after)
			wantEqual(t, "inbox", []string{"start"}, e.lrange(e.k.InboxKey(id)))
			if e.exists(e.k.WorkStreamKey("a:x")) || e.exists(e.k.timersKey()) || e.exists(e.k.EnginesKey()) {
				t.Fatalf("%d events: the failed ack wrote work, timers or engines", len(events))
			}
			if v, _ := e.rdb.Get(e.ctx, hk).Result(); v != "not a list" {
				t.Fatalf("history key changed to %q", v)
			}
		}
	})
}
