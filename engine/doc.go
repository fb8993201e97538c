// Package engine is duroworker's programming model and deterministic replay
// engine. It is pure: no Redis, no network, and no clock except the times
// passed in by its caller.
//
// An orchestration is a Go function
//
//	func(ctx *engine.OrchestrationContext, input string) (string, error)
//
// that schedules activities, durable timers and waits for external events
// through ctx and combines their futures with Get, Select and Join. Its
// execution is recorded as a history of events. On every turn the engine
// either resumes the live orchestration (a worker's sticky cache) or replays
// it from its history: the code runs again, and every action it takes is
// matched against the recorded events; completions are delivered one at a
// time in history order. Code that takes a different path than its history
// records fails the execution with a nondeterminism error naming both.
//
// Orchestration code must therefore be deterministic. It must not:
//   - read the clock (use ctx.Now), sleep (use ctx.ScheduleTimer), or use
//     timers, tickers or time.After;
//   - use random numbers or generate ids (use ctx.NewGUID);
//   - start goroutines, or use channels, mutexes or select statements (use
//     futures with ctx.Select and ctx.Join);
//   - do I/O of any kind (put it in an activity);
//   - depend on map iteration order or mutable global state.
//
// The engine detects what it can: a context used while the orchestration does
// not hold control (from another goroutine) panics with a clear message; code
// that blocks outside the context for longer than the step timeout abandons
// the turn with ErrStepTimeout; a different sequence of actions is reported as
// nondeterminism.
//
// Activities are ordinary functions that run at least once:
//
//	func(ctx *engine.ActivityContext, input string) (string, error)
//
// Orchestrations are registered under a stable name at one or more semver
// versions (NewOrchestrationRegistry). The version is chosen when an
// execution starts (by the registry's VersionPolicy unless given explicitly)
// and replay always uses exactly the recorded version. Every history event
// records the engine Version that wrote it.
package engine
