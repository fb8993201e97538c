// Package replay is duroworker's deterministic replay engine: it runs one
// execution of an orchestration, turn by turn, from its history and the
// messages of its inbox.
//
// An Executor holds the live orchestration (a coroutine) between turns, so a
// worker that caches it pays only for new events; without the cache the same
// history replays to the same state. Every action the code takes through its
// Context is matched against the recorded events, and a mismatch fails the
// execution as nondeterministic. A turn returns a TurnResult: the events to
// append and the work to send, which the worker persists in one atomic step.
//
// Events (Event), inbox messages (Message) and activity work items
// (ActivityRequest) are stored as JSON; this package owns those forms
// (docs/protocol.md documents them for other languages).
//
// User code never sees this package: the engine package wraps Context and Slot
// in its typed OrchestrationContext and Future, and installs the hooks
// (BindOrchestration, NewActivityContext) through which the runtime builds
// the engine's contexts.
package replay
