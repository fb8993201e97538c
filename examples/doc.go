// Package examples holds runnable examples of duroworker's patterns, one
// package per pattern:
//
//   - [github.com/duroworker/duroworker/examples/basics]: a hello-world
//     orchestration, a fan-out/fan-in with Join, and a human approval that
//     races an external event against a durable timer.
//   - [github.com/duroworker/duroworker/examples/healthmonitor]: the
//     versioned, long-running health monitor of the versioning guide
//     (stable name, one function per version, upgrade at continue-as-new,
//     hot fix, pinning with an Exact policy).
//
// The packages are libraries so that tests and the `duroworker dev` command
// can run them; each has a runnable Example. `go run ./cmd/duroworker dev`
// runs all of them against an embedded Redis, including a rolling upgrade.
package examples
