package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/duroworker/duroworker/engine"
)

// run executes the command line args (without the program name) and
// returns the process exit status (exitCode: 0 ok, 1 error, 2 usage, 3 not
// found, 4 orchestration failed, 5 timed out); an error's message goes to
// stderr, as one JSON object under -o json or jsonl.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	// go-redis prints its own log lines on stderr unless told otherwise; a
	// worker routes them to its logger (connect), other commands drop them.
	setRedisLogger(nil)
	root := newRootCommand(stdout, stderr)
	root.SetArgs(args)
	return execute(ctx, root, args, stderr)
}

// execute runs the command tree on args and reports its error on stderr.
func execute(ctx context.Context, root *cobra.Command, args []string, stderr io.Writer) int {
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	if cmd == nil {
		cmd = root
	}
	printError(stderr, err, errorFormat(cmd, args))
	return exitCode(err)
}

// errorFormat is the output format an error is printed in: that of the
// command, also when the command line failed to parse (before -o or the
// environment were applied).
func errorFormat(cmd *cobra.Command, args []string) outputFormat {
	f := lookupFlag(cmd, "output")
	if f == nil || f.Changed || outputFor(cmd) != outputTable {
		return outputFor(cmd)
	}
	var o outputFormat
	for i, a := range args {
		if a == "--" {
			break
		}
		v, ok := "", false
		switch {
		case (a == "-o" || a == "--output") && i+1 < len(args):
			v, ok = args[i+1], true
		case strings.HasPrefix(a, "--output="):
			v, ok = strings.TrimPrefix(a, "--output="), true
		case strings.HasPrefix(a, "-o") && len(a) > 2 && !strings.HasPrefix(a, "--"):
			v, ok = strings.TrimPrefix(strings.TrimPrefix(a, "-o"), "="), true
		}
		if ok && o.Set(v) == nil {
			return o
		}
	}
	if v, ok := os.LookupEnv(flagEnv(f)); ok && o.Set(v) == nil {
		return o
	}
	return outputTable
}

// Command groups of duroworker --help.
const (
	groupRun        = "run"
	groupInstances  = "instances"
	groupOperations = "operations"
)

// annotationNoResults marks the commands that print no results, so that
// -o json given to them is a usage error rather than ignored.
const annotationNoResults = "duroworker_no_results"

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
rolling upgrade of a versioned orchestration, against an embedded Redis.

Every flag can also be set by an environment variable, named in its help
(DUROWORKER_REDIS, DUROWORKER_PREFIX, DUROWORKER_NODE_ID, ...): a flag on
the command line wins over the variable, which wins over the default.
Exit status: 0 ok, 1 error, 2 bad usage, 3 not found, 4 orchestration
failed, 5 timed out (docs/cli.md).`,
		Version:       engine.Version,
		SilenceUsage:  true, // errors are about the run, not the flags
		SilenceErrors: true, // execute prints them once
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return prepare(cmd)
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetVersionTemplate("duroworker engine {{.Version}}\n")
	// --version without the -v shorthand cobra would add: "dev -v" is
	// --verbose.
	root.Flags().Bool("version", false, "print the engine version")
	addRootFlags(root)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return asUsage(err) })

	root.AddGroup(
		&cobra.Group{ID: groupRun, Title: "Run:"},
		&cobra.Group{ID: groupInstances, Title: "Instances:"},
		&cobra.Group{ID: groupOperations, Title: "Operations:"},
	)
	inGroup := func(id string, cmds ...*cobra.Command) {
		for _, c := range cmds {
			c.GroupID = id
			root.AddCommand(c)
		}
	}
	dev, worker, bench := newDevCommand(), newWorkerCommand(), newBenchCommand()
	for _, c := range []*cobra.Command{dev, worker, bench} {
		c.Annotations = map[string]string{annotationNoResults: "true"}
	}
	inGroup(groupRun, dev, worker, bench)
	inGroup(groupInstances, newStartCommand(), newStatusCommand(), newInfoCommand(), newListCommand(),
		newHistoryCommand(), newRaiseCommand(), newEnqueueCommand(), newCancelCommand(), newWaitCommand(),
		newDeleteCommand(), newPruneCommand())
	// Operations. A new command here gets its Redis with connectionFor(cmd)
	// (or runWithConn) and its output format with outputFor(cmd); bindEnv
	// below gives its flags their variables.
	dashboard := newDashboardCommand()
	dashboard.Annotations = map[string]string{annotationNoResults: "true"}
	inGroup(groupOperations, dashboard, newDLQCommand(), newSessionsCommand(), newQueuesCommand(), newMetricsCommand(),
		newVersionCommand())
	bindEnv(root)
	return root
}

// prepare runs before every command: it applies the environment variables
// to the flags not given (flag > environment > default), warns about
// deprecated flags and refuses -o json for commands that print no results.
func prepare(cmd *cobra.Command) error {
	// Before the environment is applied, Changed means "on the command
	// line": DUROWORKER_OUTPUT=json exported for other commands does not
	// stop a worker.
	if noResults(cmd) {
		if f := lookupFlag(cmd, "output"); f != nil && f.Changed && outputFor(cmd) != outputTable {
			return usagef("%s prints no results: -o %s applies to the commands that do (start, status, list, ...)", cmd.CommandPath(), outputFor(cmd))
		}
		if f := lookupFlag(cmd, "json"); f != nil && f.Changed && f.Value.Type() == "bool" {
			return usagef("%s prints no results: --json applies to the commands that do (start, status, list, ...)", cmd.CommandPath())
		}
	}
	if err := applyEnv(cmd); err != nil {
		return err
	}
	var warnErr error
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if instead := deprecation(f); instead != "" {
			_, warnErr = fmt.Fprintf(cmd.ErrOrStderr(), "duroworker: warning: --%s is deprecated: %s\n", f.Name, instead)
		}
	})
	return warnErr
}

// noResults reports whether cmd or a parent prints no results.
func noResults(cmd *cobra.Command) bool {
	for c := cmd; c != nil; c = c.Parent() {
		if c.Annotations[annotationNoResults] != "" {
			return true
		}
	}
	return false
}
