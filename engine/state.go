package engine

import (
	"encoding/json"
	"time"

	"github.com/duroworker/duroworker/internal/replay"
)

// SetCustomStatus publishes a status string for clients (client.Status,
// WaitForStatusChange). It is recorded in history and carried over
// ContinueAsNew. A status over MaxCustomStatusBytes is rejected with an
// error and nothing changes.
func (c *OrchestrationContext) SetCustomStatus(status string) error {
	return asPublic(c.c.SetCustomStatus(status))
}

// ResetCustomStatus clears the custom status.
func (c *OrchestrationContext) ResetCustomStatus() { c.c.ResetCustomStatus() }

// CustomStatus returns the current custom status and whether one is set.
func (c *OrchestrationContext) CustomStatus() (string, bool) { return c.c.CustomStatus() }

// SetKV stores value under key in the instance's key-value state, which
// survives ContinueAsNew and can be read by clients and by other instances.
// It is rejected with an error, changing nothing, when the key is empty or
// longer than MaxKVKeyBytes, the value is over MaxKVValueBytes or not UTF-8,
// or a new key would exceed MaxKVKeys.
func (c *OrchestrationContext) SetKV(key, value string) error {
	return asPublic(c.c.SetKV(key, value))
}

// SetKVTyped stores value encoded by Encode.
func SetKVTyped(c *OrchestrationContext, key string, value any) error {
	s, err := Encode(value)
	if err != nil {
		return err
	}
	return c.SetKV(key, s)
}

// GetKV returns the value stored under key. Reads see the state as of the
// start of this execution plus this execution's own changes, so they are the
// same on every replay.
func (c *OrchestrationContext) GetKV(key string) (string, bool) { return c.c.GetKV(key) }

// GetKVTyped returns the value under key decoded as T; ok is false when the
// key is missing.
func GetKVTyped[T any](c *OrchestrationContext, key string) (v T, ok bool, err error) {
	s, ok := c.GetKV(key)
	if !ok {
		return v, false, nil
	}
	v, err = Decode[T](s)
	return v, true, err
}

// KVKeys returns the keys of the key-value state, sorted.
func (c *OrchestrationContext) KVKeys() []string { return c.c.KVKeys() }

// KVAll returns a copy of the key-value state.
func (c *OrchestrationContext) KVAll() map[string]string { return c.c.KVAll() }

// ClearKV removes key.
func (c *OrchestrationContext) ClearKV(key string) { c.c.ClearKV(key) }

// ClearAllKV removes every key.
func (c *OrchestrationContext) ClearAllKV() { c.c.ClearAllKV() }

// PruneKV removes the keys last updated before t and returns how many.
func (c *OrchestrationContext) PruneKV(before time.Time) int { return c.c.PruneKV(before) }

// KVLookup is the result of GetKVFromInstance.
type KVLookup struct {
	Value string `json:"value,omitempty"`
	Found bool   `json:"found"`
}

// GetKVFromInstance reads key from another instance's key-value state. It
// runs as a built-in activity, so its result is recorded in history and the
// read is the same on replay.
func (c *OrchestrationContext) GetKVFromInstance(instanceID, key string) *Future[KVLookup] {
	in, _ := json.Marshal(replay.KVLookupRequest{Instance: instanceID, Key: key})
	return typedFuture[KVLookup](c.c.ScheduleActivity(replay.SysActivityGetKV, string(in), replay.ActivityCall{}))
}
