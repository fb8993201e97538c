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
//	         operate instances in a Redis (--redis, --prefix, --json);
//	         see docs/cli.md.
//	bench    run benchmark workloads (docs in bench/RESULTS.md).
//	version  print the engine version and the Go version.
//
// Run `duroworker help <command>` for the flags of a command. Errors are
// printed on stderr and make the command exit with status 1.
package main

import (
	"context"
	"os"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
