// Package main is the duroworker command-line tool: one binary for
// development, worker nodes, operations and benchmarks of duroworker, the
// durable orchestration runtime on Redis.
//
// Usage:
//
//	duroworker [command] [flags]
//
// Commands:
//
//	dev      run the example scenarios end to end against an embedded Redis:
//	         a redis-server child process when redis-server is on PATH,
//	         otherwise an in-process miniredis. It runs hello-world,
//	         fan-out/fan-in, an approval with an external event and a timer,
//	         a rolling upgrade of the versioned health monitor (1.0.0 to
//	         1.0.2 across two worker nodes) and version pinning, prints live
//	         progress and a summary, and exits non-zero unless every scenario
//	         reached its expected state.
//	worker   run a worker node serving the example orchestrations
//	         (--metrics-addr serves Prometheus metrics).
//	start, status, info, list, history, raise, enqueue, cancel, wait,
//	delete, prune, dlq, sessions, queues, metrics
//	         operate instances in a Redis (--redis, --prefix, -o json);
//	         see docs/cli.md.
//	dashboard
//	         serve the web dashboard of one or more namespaces
//	         (docs/dashboard.md).
//	bench    run benchmark workloads (docs in bench/RESULTS.md).
//	version  print the engine version, the build's module version and
//	         commit, and the Go version.
//
// Run `duroworker help <command>` for the flags of a command. Every flag
// can be set by an environment variable (DUROWORKER_<FLAG> for the root's and
// the worker's flags, DUROWORKER_<COMMAND>_<FLAG> for the others; see
// docs/cli.md).
// Errors are printed on stderr; the exit status tells them apart: 1 error,
// 2 bad usage, 3 not found, 4 orchestration failed, 5 timed out.
package main

import (
	"context"
	"os"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
