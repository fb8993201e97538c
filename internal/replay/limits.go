package replay

// Limits enforced by the engine. Exceeding one gives a clear application
// error; nothing is left stuck.
const (
	// MaxPayloadBytes bounds an activity or orchestration input or output,
	// and an event payload.
	MaxPayloadBytes = 4 << 20
	// DefaultMaxHistoryEvents bounds the events of one execution (see
	// ExecutorOptions.MaxHistoryEvents).
	DefaultMaxHistoryEvents = 100_000
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
