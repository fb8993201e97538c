package replay

// Version is the version of this replay engine. Every history event records
// the engine version that wrote it, and each execution is pinned to the engine
// version that started it: a worker only replays executions whose pin lies in
// its supported range (see capability.Range), so that a history written by a
// newer engine is never replayed by an older one.
//
// The minor version changes whenever replay semantics or the set of event
// kinds changes.
const Version = "0.1.0"
