// Package examples holds runnable examples of duroworker's patterns.
//
// Libraries, one package per pattern, with a runnable Example each:
//
//   - [github.com/duroworker/duroworker/examples/basics]: a hello-world
//     orchestration, a fan-out/fan-in with Join, and a human approval that
//     races an external event against a durable timer.
//   - [github.com/duroworker/duroworker/examples/healthmonitor]: the
//     versioned, long-running health monitor of the versioning guide
//     (stable name, one function per version, upgrade at continue-as-new,
//     hot fix, pinning with an Exact policy).
//
// Programs, one scenario each, run with `go run ./examples/<name>` (flags:
// -redis URL for a real Redis instead of an in-process miniredis, -v for
// every worker log line); each exits 0 when its scenario reached the
// expected outcome:
//
//   - hotfix: the versioning guide's hot-fix deployment, with the health
//     monitor; the version of each execution before and after.
//   - statemigration: a major version that migrates the state carried
//     through continue-as-new from the old format.
//   - pinning: an Exact policy, StartVersioned and ContinueAsNewVersioned.
//   - draining: executions pinned to a newer engine, drained by widening
//     SupportedReplayVersions on one node.
//   - fanout, saga, approval: fan-out/fan-in over two nodes, compensation
//     in reverse order, an event raced against a timer.
//
// `go run ./cmd/duroworker dev` runs the libraries' orchestrations against
// an embedded Redis, including a rolling upgrade.
package examples
