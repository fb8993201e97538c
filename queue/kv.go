package queue

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Per-instance key-value state follows a two-table model. kv:<id> holds the
// committed state as of the start of the current execution; kvd:<id> holds
// the current execution's writes (values, tombstones, and a clear-all
// marker). Acks apply KVOps to the delta; the ack that ends the execution
// merges it into kv:<id>. A fetch that sends the history also sends
// kv:<id>, so a replay reads the state the execution started from and
// re-applies the execution's own writes from its history. Clients read the
// merged view with KV and KVAll.

// KVOpKind is the kind of a KVOp.
type KVOpKind int

// KV operation kinds. The zero value is not a valid kind.
const (
	// KVSet sets Key to Value.
	KVSet KVOpKind = iota + 1
	// KVClear removes Key.
	KVClear
	// KVClearAll removes every key, those committed by earlier executions
	// included; later KVSets of the same execution add keys again.
	KVClearAll
)

func (k KVOpKind) String() string {
	switch k {
	case KVSet:
		return "KVSet"
	case KVClear:
		return "KVClear"
	case KVClearAll:
		return "KVClearAll"
	}
	return fmt.Sprintf("KVOpKind(%d)", int(k))
}

// KVOp is one key-value write of an orchestration turn.
type KVOp struct {
	Op KVOpKind
	// Key is required for KVSet and KVClear (non-empty, not starting with a
	// NUL byte); it is ignored for KVClearAll.
	Key string
	// Value is the value of a KVSet (valid UTF-8; it is stored as a JSON
	// string); it is ignored otherwise.
	Value string
	// UpdatedAt is stored with the write (millisecond precision). If zero,
	// the Redis server's clock at the ack is used.
	UpdatedAt time.Time
}

// KVEntry is one key's value and the time it was last written.
type KVEntry struct {
	Value     string
	UpdatedAt time.Time
}

// kvClearAllField is the field of kvd:<id> that marks a KVClearAll in the
// current execution. Keys starting with NUL are refused, so no key collides.
const kvClearAllField = "\x00all"

// encodeKVOps validates ops and returns their script arguments: for each op
// its code, key, the JSON string literal of its value and its time in ms
// ("" for zero).
func encodeKVOps(ops []KVOp) ([]any, error) {
	args := make([]any, 0, 4*len(ops))
	for i, op := range ops {
		var code, value string
		switch op.Op {
		case KVSet, KVClear:
			if op.Key == "" || op.Key[0] == 0 {
				return nil, fmt.Errorf("kv op %d (%v): key must be non-empty and not start with NUL", i, op.Op)
			}
			code = "del"
			if op.Op == KVSet {
				code = "set"
				var err error
				if value, err = jsonString(op.Value); err != nil {
					return nil, fmt.Errorf("kv op %d (%v %q): %w", i, op.Op, op.Key, err)
				}
			}
		case KVClearAll:
			code = "all"
		default:
			return nil, fmt.Errorf("kv op %d: invalid kind %v", i, op.Op)
		}
		t := ""
		if !op.UpdatedAt.IsZero() {
			t = strconv.FormatInt(op.UpdatedAt.UnixMilli(), 10)
		}
		args = append(args, code, op.Key, value, t)
	}
	return args, nil
}

// jsonString returns s as a JSON string literal; s must be valid UTF-8 so
// that it reads back unchanged.
func jsonString(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", errors.New("value is not valid UTF-8")
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// kvStored is a value of kv:<id> or kvd:<id>: {"v":value,"t":ms} or the
// tombstone {"d":1,"t":ms}.
type kvStored struct {
	V *string `json:"v"`
	T int64   `json:"t"`
	D int     `json:"d"`
}

// decodeKV decodes one stored value; tomb is true for a tombstone.
func decodeKV(field, raw string) (e KVEntry, tomb bool, err error) {
	var s kvStored
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		return KVEntry{}, false, fmt.Errorf("decoding kv field %q: %w", field, err)
	}
	if s.D == 1 {
		return KVEntry{UpdatedAt: time.UnixMilli(s.T)}, true, nil
	}
	if s.V == nil {
		return KVEntry{}, false, fmt.Errorf("decoding kv field %q: no value in %s", field, raw)
	}
	return KVEntry{Value: *s.V, UpdatedAt: time.UnixMilli(s.T)}, false, nil
}

// decodeKVStore decodes HGETALL kv:<id> (which holds no tombstones; any
// found are skipped).
func decodeKVStore(h map[string]string) (map[string]KVEntry, error) {
	out := make(map[string]KVEntry, len(h))
	for f, raw := range h {
		e, tomb, err := decodeKV(f, raw)
		if err != nil {
			return nil, err
		}
		if !tomb {
			out[f] = e
		}
	}
	return out, nil
}

// KV returns the current value of key in an instance's key-value state: the
// committed state with the running execution's writes on top. ok is false
// when the key is not set. It returns ErrInstanceNotFound if there is no
// such instance.
func (s *Store) KV(ctx context.Context, instanceID, key string) (value string, ok bool, err error) {
	k := s.keys
	raw, err := s.kvRead.Run(ctx, s.rdb,
		[]string{k.Prefix(), k.InstanceKey(instanceID), k.kvKey(instanceID), k.kvDeltaKey(instanceID)},
		instanceID, "1", key).Slice()
	if err != nil {
		return "", false, fmt.Errorf("reading kv %q of %s: %w", key, instanceID, mapScriptError(err))
	}
	e, ok, err := decodeKVOne(key, raw)
	if err != nil {
		return "", false, fmt.Errorf("reading kv %q of %s: %w", key, instanceID, err)
	}
	return e.Value, ok, nil
}

func decodeKVOne(key string, raw []any) (KVEntry, bool, error) {
	if len(raw) != 3 {
		return KVEntry{}, false, fmt.Errorf("unexpected reply of length %d, want 3", len(raw))
	}
	store, err := replyString(raw[0])
	if err != nil {
		return KVEntry{}, false, err
	}
	delta, err := replyString(raw[1])
	if err != nil {
		return KVEntry{}, false, err
	}
	marked, err := replyInt(raw[2])
	if err != nil {
		return KVEntry{}, false, err
	}
	switch {
	case delta != "":
		e, tomb, err := decodeKV(key, delta)
		return e, err == nil && !tomb, err
	case marked == 1 || store == "":
		return KVEntry{}, false, nil
	}
	e, tomb, err := decodeKV(key, store)
	return e, err == nil && !tomb, err
}

// KVAll returns an instance's whole key-value state: the committed state
// with the running execution's writes on top (its tombstones hide keys, and
// a KVClearAll hides everything committed before it). It returns
// ErrInstanceNotFound if there is no such instance.
func (s *Store) KVAll(ctx context.Context, instanceID string) (map[string]KVEntry, error) {
	k := s.keys
	raw, err := s.kvRead.Run(ctx, s.rdb,
		[]string{k.Prefix(), k.InstanceKey(instanceID), k.kvKey(instanceID), k.kvDeltaKey(instanceID)},
		instanceID, "0", "").Slice()
	if err != nil {
		return nil, fmt.Errorf("reading kv of %s: %w", instanceID, mapScriptError(err))
	}
	m, err := decodeKVAll(raw)
	if err != nil {
		return nil, fmt.Errorf("reading kv of %s: %w", instanceID, err)
	}
	return m, nil
}

func decodeKVAll(raw []any) (map[string]KVEntry, error) {
	if len(raw) != 3 {
		return nil, fmt.Errorf("unexpected reply of length %d, want 3", len(raw))
	}
	store, err := flatToMap(raw[1])
	if err != nil {
		return nil, err
	}
	delta, err := flatToMap(raw[2])
	if err != nil {
		return nil, err
	}
	out, err := decodeKVStore(store) // empty when the clear-all marker is set
	if err != nil {
		return nil, err
	}
	for f, v := range delta {
		if f == kvClearAllField {
			continue
		}
		e, tomb, err := decodeKV(f, v)
		if err != nil {
			return nil, err
		}
		if tomb {
			delete(out, f)
		} else {
			out[f] = e
		}
	}
	return out, nil
}

// KVCommitted returns an instance's committed key-value state: the state as
// of the start of its current execution, without that execution's writes.
// It is what FetchOrchestrations returns with a history, for a worker that
// must rebuild an execution whose history it read separately. A missing
// instance has an empty state.
func (s *Store) KVCommitted(ctx context.Context, instanceID string) (map[string]KVEntry, error) {
	h, err := s.rdb.HGetAll(ctx, s.keys.kvKey(instanceID)).Result()
	if err != nil {
		return nil, fmt.Errorf("reading committed key-value state of %s: %w", instanceID, err)
	}
	return decodeKVStore(h)
}
