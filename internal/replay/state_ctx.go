package replay

import (
	"fmt"
	"sort"
	"time"
	"unicode/utf8"
)

// SetCustomStatus publishes a status string for clients (client.Status,
// WaitForStatusChange). It is recorded in history and carried over
// ContinueAsNew. A status over MaxCustomStatusBytes is rejected with an
// error and nothing changes.
func (c *Context) SetCustomStatus(status string) error {
	x := c.x
	x.mustOwn()
	if len(status) > MaxCustomStatusBytes {
		return ApplicationError(KindOrchestrationFailed, fmt.Sprintf("custom status is %d bytes, more than the limit of %d", len(status), MaxCustomStatusBytes))
	}
	if _, isNew := x.emit(Event{Kind: EventCustomStatusUpdated, Result: status}); isNew {
		x.out.CustomStatus = &CustomStatusUpdate{Value: status}
	}
	v := status
	x.customStatus = &v
	return nil
}

// ResetCustomStatus clears the custom status.
func (c *Context) ResetCustomStatus() {
	x := c.x
	x.mustOwn()
	if _, isNew := x.emit(Event{Kind: EventCustomStatusUpdated, Cleared: true}); isNew {
		x.out.CustomStatus = &CustomStatusUpdate{Clear: true}
	}
	x.customStatus = nil
}

// CustomStatus returns the current custom status and whether one is set.
func (c *Context) CustomStatus() (string, bool) {
	if c.x.customStatus == nil {
		return "", false
	}
	return *c.x.customStatus, true
}

// SetKV stores value under key in the instance's key-value state, which
// survives ContinueAsNew and can be read by clients and by other instances.
// It is rejected with an error, changing nothing, when the key is empty or
// longer than MaxKVKeyBytes, the value is over MaxKVValueBytes, or a new key
// would exceed MaxKVKeys.
func (c *Context) SetKV(key, value string) error {
	x := c.x
	x.mustOwn()
	switch {
	case key == "" || len(key) > MaxKVKeyBytes:
		return ApplicationError(KindOrchestrationFailed, fmt.Sprintf("key-value key must be 1 to %d bytes, got %d", MaxKVKeyBytes, len(key)))
	case key[0] == 0:
		return ApplicationError(KindOrchestrationFailed, "key-value key must not start with a NUL byte (reserved)")
	case !utf8.ValidString(value):
		return ApplicationError(KindOrchestrationFailed, fmt.Sprintf("value of key %q is not valid UTF-8", key))
	case len(value) > MaxKVValueBytes:
		return ApplicationError(KindOrchestrationFailed, fmt.Sprintf("value of key %q is %d bytes, more than the limit of %d", key, len(value), MaxKVValueBytes))
	}
	if _, exists := x.kv[key]; !exists && len(x.kv) >= MaxKVKeys {
		return ApplicationError(KindOrchestrationFailed, fmt.Sprintf("key-value state already holds %d keys, the limit", MaxKVKeys))
	}
	ev, isNew := x.emit(Event{Kind: EventKeyValueSet, Name: key, Result: value})
	x.kv[key] = KVEntry{Value: value, UpdatedAt: time.UnixMilli(ev.Time)}
	if isNew {
		x.out.KV = append(x.out.KV, KVOp{Kind: KVSet, Key: key, Value: value, UpdatedAt: time.UnixMilli(ev.Time)})
	}
	return nil
}

// GetKV returns the value stored under key. Reads see the state as of the
// start of this execution plus this execution's own changes, so they are the
// same on every replay.
func (c *Context) GetKV(key string) (string, bool) {
	e, ok := c.x.kv[key]
	return e.Value, ok
}

// KVKeys returns the keys of the key-value state, sorted.
func (c *Context) KVKeys() []string {
	keys := make([]string, 0, len(c.x.kv))
	for k := range c.x.kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// KVAll returns a copy of the key-value state.
func (c *Context) KVAll() map[string]string {
	out := make(map[string]string, len(c.x.kv))
	for k, e := range c.x.kv {
		out[k] = e.Value
	}
	return out
}

// ClearKV removes key.
func (c *Context) ClearKV(key string) {
	x := c.x
	x.mustOwn()
	ev, isNew := x.emit(Event{Kind: EventKeyValueCleared, Name: key})
	delete(x.kv, key)
	if isNew {
		x.out.KV = append(x.out.KV, KVOp{Kind: KVClear, Key: key, UpdatedAt: time.UnixMilli(ev.Time)})
	}
}

// ClearAllKV removes every key.
func (c *Context) ClearAllKV() {
	x := c.x
	x.mustOwn()
	ev, isNew := x.emit(Event{Kind: EventKeyValuesCleared})
	x.kv = map[string]KVEntry{}
	if isNew {
		x.out.KV = append(x.out.KV, KVOp{Kind: KVClearAll, UpdatedAt: time.UnixMilli(ev.Time)})
	}
}

// PruneKV removes the keys last updated before t and returns how many.
func (c *Context) PruneKV(before time.Time) int {
	n := 0
	for _, k := range c.KVKeys() {
		if c.x.kv[k].UpdatedAt.Before(before) {
			c.ClearKV(k)
			n++
		}
	}
	return n
}

// ReservedPrefix starts the names of built-in activities; registries
// refuse user names that start with it.
const ReservedPrefix = "__duroworker"

// SysActivityGetKV is the built-in activity behind GetKVFromInstance; every
// worker provides it.
const SysActivityGetKV = ReservedPrefix + ":get-kv"

// KVLookupRequest is the input of SysActivityGetKV.
type KVLookupRequest struct {
	Instance string `json:"instance"`
	Key      string `json:"key"`
}
