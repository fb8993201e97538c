package engine

// Limits enforced by the engine. Exceeding one gives a clear application
// error; nothing is left stuck.
const (
	// MaxPayloadBytes bounds an activity or orchestration input or output,
	// and an event payload.
	MaxPayloadBytes = 4 << 20
	// MaxCarryForward bounds the event-queue messages carried into the next
	// execution by ContinueAsNew; beyond it the oldest are dropped, with a
	// warning in the log.
	MaxCarryForward = 100
	// MaxCustomStatusBytes bounds the custom status.
	MaxCustomStatusBytes = 256 << 10
	// MaxKVKeys bounds the keys of an instance's key-value state.
	MaxKVKeys = 150
	// MaxKVValueBytes bounds one key-value value.
	MaxKVValueBytes = 64 << 10
	// MaxKVKeyBytes bounds one key.
	MaxKVKeyBytes = 256
	// MaxTagBytes bounds an activity tag.
	MaxTagBytes = 256
	// MaxSessionIDBytes bounds a session id.
	MaxSessionIDBytes = 256
)

// Version is the version of the replay engine. Every history event records
// the engine version that wrote it, and each execution is pinned to the
// engine version that started it: a worker only replays executions whose pin
// lies in its supported range, so a history written by a newer engine is
// never replayed by an older one.
const Version = "0.1.0"
