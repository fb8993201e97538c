package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/duroworker/duroworker/engine"
)

// run executes the command line args (without the program name) and
// returns the process exit status: 0 on success, 1 on any error, whose
// message goes to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	// go-redis prints its own log lines on stderr unless told otherwise; a
	// worker routes them to its logger (connect), other commands drop them.
	setRedisLogger(nil)
	root := newRootCommand(stdout, stderr)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(stderr, "duroworker: %s\n", printable(err.Error()))
		return 1
	}
	return 0
}

// newRootCommand builds the duroworker command tree writing to stdout and
// stderr.
func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "duroworker",
		Short: "Durable orchestrations and a distributed worker pool on Redis",
		Long: `duroworker runs durable orchestrations (deterministic Go functions replayed
from their history) and activities on a fleet of worker processes that share
one Redis.

Start with "duroworker dev": it runs the example orchestrations, including a
rolling upgrade of a versioned orchestration, against an embedded Redis.`,
		Version:       engine.Version,
		SilenceUsage:  true, // errors are about the run, not the flags
		SilenceErrors: true, // run prints them once
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetVersionTemplate("duroworker engine {{.Version}}\n")
	root.AddCommand(newVersionCommand(), newDevCommand(), newBenchCommand())
	root.AddCommand(newWorkerCommand(), newStartCommand(), newStatusCommand(), newInfoCommand(), newListCommand(),
		newHistoryCommand(), newRaiseCommand(), newEnqueueCommand(), newCancelCommand(), newWaitCommand(),
		newDeleteCommand(), newPruneCommand(), newDLQCommand(), newSessionsCommand(), newQueuesCommand(), newMetricsCommand())
	root.AddCommand(newDashboardCommand())
	return root
}
