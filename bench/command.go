// Package bench is the "duroworker bench" command: benchmark workloads that
// measure a running duroworker on a Redis, optionally beside the peers
// go-workflows and asynq (the nested module bench/peers), reported as
// medians with min-max and judged against the performance targets
// (bench/RESULTS.md). The workloads, the measures and the report live in
// bench/internal; this package exports only the command.
package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/duroworker/duroworker/bench/internal/report"
	"github.com/duroworker/duroworker/bench/internal/result"
	"github.com/duroworker/duroworker/bench/internal/workload"
)

// DeprecatedAnnotation marks a hidden flag kept as a deprecated alias; its
// value says what to use instead. The duroworker command warns when such a
// flag is given.
const DeprecatedAnnotation = "duroworker_deprecated"

// connectFunc opens the Redis the workloads run on; see NewCommand.
type connectFunc = func(ctx context.Context, url string, log io.Writer) (rdb *redis.Client, peerURL string, closeAll func(), err error)

// config holds the flags shared by every bench subcommand.
type config struct {
	redisURL        string
	flush           bool
	jsonFile        string
	runs            int
	vs              string
	orchConcurrency int
	actConcurrency  int
	cpuProfile      string
	peerBinary      string
	peersDir        string
	poll            time.Duration
	timeout         time.Duration
	registerAll     bool
	gwPollers       string
	gwRetry         string
	asynqConc       string
	costs           int
	end             string
	connect         connectFunc
}

// NewCommand returns the "bench" command of the duroworker CLI, with its
// subcommands (one per workload, "filter", "all" and "report").
//
// connect opens the Redis the workloads run on: the server at url, or, when
// url is empty, an embedded redis-server with persistence off, writing a
// note of what it does to log. It returns the client, the URL that the peer
// program connects to, and a function that closes both. It must not be nil;
// the CLI passes its own, which never prints the password of a URL.
func NewCommand(connect func(ctx context.Context, url string, log io.Writer) (rdb *redis.Client, peerURL string, closeAll func(), err error)) *cobra.Command {
	cfg := &config{connect: connect}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Run benchmark workloads against a Redis",
		Long: `Benchmark workloads. Each prints a header with the machine, the Redis version
and its persistence setting, a progress bar on stderr while it runs, then a
table. Without --redis, an embedded redis-server is started with persistence
off. The database is flushed before every workload (FLUSHDB); with --redis
that needs --flush.

Workers run in this process (worker.New with the worker defaults unless
--orch-concurrency/--act-concurrency say otherwise); the settings in effect
are printed with the results. Completion is counted with one counter (the
store's stats hash, read every --poll), not with a wait per instance.

--vs go-workflows,asynq runs the same workloads, one after another on the
same Redis, with github.com/cschleiden/go-workflows (drain, steady,
sequential, fanout, long, timers) and github.com/hibiken/asynq (drain,
steady), from the separate module bench/peers (built with "go build" at
the start of the run; --peerbench names a prebuilt binary instead).

--gw-pollers 2,4,8,16,32 runs each go-workflows case once per setting of
its workflow and activity pollers (both set to the value), and
--asynq-concurrency 16,64 each asynq case once per concurrency; the table
has a row per setting, a sweep summary names the best, and the targets and
the Markdown compare against the best. --gw-retry on,off also runs the
go-workflows fan-out with its activity retries on and off (every other case
runs go-workflows with retries as the case says, off unless it has --retry,
as duroworker does).

--end wait ends duroworker's drain and steady where a caller of the client
sees the end (client.WaitMany, client.Wait returning); the peers keep their
own end points (go-workflows: the workflow function returns, asynq: the
handler returns).

Every measured window also records the deltas of Redis INFO commandstats
(calls and µs per command, Lua-internal commands included) and the Lua
scripts the measured clients called, by name; they are in the JSON and,
per orchestration, under the table (--redis-commands sets how many
commands are printed).

"bench all --runs 3" runs every workload at the sizes of the performance
targets three times and prints medians with min-max, and the targets as
met or missed.`,
	}
	f := cmd.PersistentFlags()
	f.StringVar(&cfg.redisURL, "redis", "", "Redis URL (redis://host:port/db); empty starts an embedded redis-server with persistence off")
	f.BoolVar(&cfg.flush, "flush", false, "allow FLUSHDB of the --redis database between workloads (required with --redis)")
	f.StringVar(&cfg.jsonFile, "out", "", "also write the header, every result, the medians and the targets to this JSON file")
	f.StringVar(&cfg.jsonFile, "json", "", "same as --out")
	// Deprecated: hidden, and the duroworker command warns when it is used.
	f.Lookup("json").Hidden = true
	f.Lookup("json").Annotations = map[string][]string{DeprecatedAnnotation: {"use --out FILE"}}
	f.IntVar(&cfg.runs, "runs", 1, "repeat every workload this many times and report the median with min-max")
	f.StringVar(&cfg.vs, "vs", "", "comma-separated peers to run too: go-workflows, asynq")
	f.IntVar(&cfg.orchConcurrency, "orch-concurrency", 0, "worker orchestration concurrency (0: worker default, 8)")
	f.IntVar(&cfg.actConcurrency, "act-concurrency", 0, "worker activity concurrency (0: worker default, 16); also the peers' concurrency when set")
	f.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write a CPU profile of the duroworker side (first run); with several workloads, one file per workload: NAME-<workload>.pprof")
	f.StringVar(&cfg.peerBinary, "peerbench", "", "prebuilt peer program (default: build bench/peers/cmd/peerbench)")
	f.StringVar(&cfg.peersDir, "peers-dir", "", "directory of the bench/peers module (default: found from the working directory)")
	f.DurationVar(&cfg.poll, "poll", 2*time.Millisecond, "how often completion counters are read")
	f.DurationVar(&cfg.timeout, "timeout", 10*time.Minute, "give up on a workload after this long")
	f.StringVar(&cfg.gwPollers, "gw-pollers", "", "comma-separated go-workflows poller counts to sweep (workflow and activity pollers both set), e.g. 2,4,8,16,32; empty: its default (2)")
	f.StringVar(&cfg.gwRetry, "gw-retry", "", "go-workflows fan-out activity retries to run: on, off or on,off; empty: as the case (on for fanout --retry)")
	f.StringVar(&cfg.asynqConc, "asynq-concurrency", "", "comma-separated asynq concurrencies to sweep, e.g. 16,32,64; empty: --act-concurrency or 16")
	f.StringVar(&cfg.end, "end", "notify", "where drain and steady observe an orchestration's end on the duroworker side: notify (the store's ended notification, drain: the stats counter) or wait (client.Wait returning, drain: client.WaitMany; what a caller sees)")
	f.IntVar(&cfg.costs, "redis-commands", 8, "Redis commands printed per case and system under the table, by server time (0: all; the JSON has all)")
	f.BoolVar(&cfg.registerAll, "register-all", false, "workers register all five bench orchestrations, not only the workload's (every registered name adds buckets each fetch reads)")

	cmd.AddCommand(
		newWorkloadCommand(cfg, result.WorkloadDrain, "N orchestrations of K activities enqueued, then processed", workload.Options{N: 2000, K: 1}),
		newWorkloadCommand(cfg, result.WorkloadSteady, "Fixed offered rate (or one at a time) and end-to-end latency", workload.Options{N: 2000}),
		newWorkloadCommand(cfg, result.WorkloadSequential, "N orchestrations x K sequential no-op activities", workload.Options{N: 1, K: 200}),
		newWorkloadCommand(cfg, result.WorkloadFanout, "N orchestrations x K parallel activities, then join", workload.Options{N: 1, K: 1000, Retry: true}),
		newWorkloadCommand(cfg, result.WorkloadLong, "1 orchestration x 1000 sequential activities: first 100 vs last 100 steps", workload.Options{N: 1, K: 1000}),
		newWorkloadCommand(cfg, result.WorkloadTimers, "N orchestrations sleep 1 s then run one activity: timer lateness", workload.Options{N: 1000, Delay: time.Second}),
		newWorkloadCommand(cfg, result.WorkloadSessions, "K activities pinned to one session across several workers", workload.Options{N: 1, K: 500, Workers: 3}),
		newWorkloadCommand(cfg, result.WorkloadIdle, "Commands per second of an idle worker", workload.Options{Duration: 10 * time.Second}),
		newWorkloadCommand(cfg, result.WorkloadInflight, "Worker RSS with N orchestrations in flight", workload.Options{N: 10_000}),
		newWorkloadCommand(cfg, result.WorkloadBacklog, "N starts made as fast as possible on a running worker: time to first completion, end-to-end latency", workload.Options{N: 100_000}),
		newFilterCommand(cfg),
		newAllCommand(cfg),
		newReportCommand(),
	)
	return cmd
}

func newWorkloadCommand(cfg *config, name, short string, def workload.Options) *cobra.Command {
	o := def
	cmd := &cobra.Command{
		Use:   name,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c := workload.Case{ID: name, Workload: name, Opts: o, Peers: workload.Peers(name)}
			c.Name = c.DefaultName()
			return runPlan(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), cfg, []workload.Case{c}, false)
		},
	}
	f := cmd.Flags()
	switch name {
	case result.WorkloadIdle:
		f.DurationVar(&o.Duration, "duration", def.Duration, "how long to measure")
	case result.WorkloadSteady:
		f.IntVar(&o.N, "n", def.N, "orchestrations when one at a time (--rate 0)")
		f.Float64Var(&o.Rate, "rate", 0, "offered starts per second; 0 runs one orchestration at a time")
		f.DurationVar(&o.Duration, "duration", 10*time.Second, "how long to offer --rate")
	default:
		f.IntVar(&o.N, "n", def.N, "orchestrations")
	}
	switch name {
	case result.WorkloadDrain, result.WorkloadSequential, result.WorkloadFanout, result.WorkloadLong, result.WorkloadSessions:
		f.IntVar(&o.K, "k", def.K, "activities per orchestration")
	}
	switch name {
	case result.WorkloadFanout:
		f.BoolVar(&o.Retry, "retry", def.Retry, "a retry policy on every activity (3 attempts, exponential backoff from 100 ms)")
		f.IntVar(&o.FailEvery, "fail-every", 0, "fail the first attempt of every n-th activity (needs --retry to complete)")
	case result.WorkloadTimers:
		f.DurationVar(&o.Delay, "delay", def.Delay, "timer duration")
	case result.WorkloadSessions:
		f.IntVar(&o.Workers, "workers", def.Workers, "workers sharing the session")
	}
	return cmd
}

func newFilterCommand(cfg *config) *cobra.Command {
	var incompatible, samples int
	cmd := &cobra.Command{
		Use:   "filter",
		Short: "Fetch latency of compatible work with 100,000 incompatible items waiting",
		Long: `Measures the capability filter: how long a worker's fetch of work it can
take lasts on an empty store, then with --incompatible orchestration starts and
activities waiting in buckets it does not serve. The ratio of the two medians
shows whether fetch cost grows with work the worker cannot take.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c := workload.Case{ID: workload.CaseFilter, Workload: result.WorkloadFilter, Filter: workload.FilterOptions{Incompatible: incompatible, Samples: samples}}
			c.Name = c.DefaultName()
			return runPlan(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), cfg, []workload.Case{c}, false)
		},
	}
	cmd.Flags().IntVar(&incompatible, "incompatible", 100_000, "incompatible items of each kind to enqueue")
	cmd.Flags().IntVar(&samples, "samples", 2_000, "timed fetches per phase")
	return cmd
}

func newAllCommand(cfg *config) *cobra.Command {
	var scale float64
	var only string
	cmd := &cobra.Command{
		Use:   "all",
		Short: "Run every workload at the sizes of the performance targets, and judge the targets",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			plan := workload.StandardPlan(scale)
			if only != "" {
				var keep []workload.Case
				for _, c := range plan {
					for _, id := range strings.Split(only, ",") {
						if strings.TrimSpace(id) == c.ID {
							keep = append(keep, c)
						}
					}
				}
				if len(keep) == 0 {
					return fmt.Errorf("--only %q matches no case", only)
				}
				plan = keep
			}
			return runPlan(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), cfg, plan, true)
		},
	}
	cmd.Flags().Float64Var(&scale, "scale", 1, "shrink every count by this factor (0 < scale <= 1) for a quicker run")
	cmd.Flags().StringVar(&only, "only", "", "comma-separated case ids to run (drain, steady-1, steady-1000, seq-200, seq-many, long, fanout-1000, fanout-many, timers, filter, sessions, idle, inflight, backlog)")
	return cmd
}

func newReportCommand() *cobra.Command {
	var markdown bool
	var costs int
	cmd := &cobra.Command{
		Use:   "report FILE.json",
		Short: "Print the tables and targets of an --out file again (--markdown for bench/RESULTS.md)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			var rep report.File
			if err := json.Unmarshal(data, &rep); err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			out := cmd.OutOrStdout()
			aggs := result.AggregateRuns(rep.Results)
			var plan []workload.Case
			for _, c := range rep.Plan {
				plan = append(plan, workload.Case{ID: c.ID, Name: c.Name, Workload: c.Workload})
			}
			if len(plan) == 0 { // a report written before the plan was recorded: match the standard plan by name
				for _, c := range workload.StandardPlan(1) {
					for _, a := range aggs {
						if a.Case == c.Name {
							plan = append(plan, c)
							break
						}
					}
				}
			}
			targets := report.EvaluateTargets(plan, result.BestOnly(aggs))
			if markdown {
				report.WriteMarkdown(out, aggs, targets)
				if costs >= 0 {
					result.WriteCosts(out, aggs, costs, true)
				}
				return nil
			}
			rep.Header.Print(out)
			fmt.Fprintln(out)
			report.PrintAggregates(out, aggs, rep.Runs)
			report.PrintSweeps(out, aggs)
			if costs >= 0 {
				result.WriteCosts(out, aggs, costs, false)
			}
			if len(targets) > 0 {
				fmt.Fprintln(out)
				report.PrintTargets(out, targets)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&markdown, "markdown", false, "print Markdown tables")
	cmd.Flags().IntVar(&costs, "redis-commands", 8, "Redis commands shown per case and system, by server time (0: all, -1: no Redis cost section)")
	return cmd
}
