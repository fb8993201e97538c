package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/duroworker/duroworker/bench"
	"github.com/duroworker/duroworker/engine"
)

// benchConfig holds the flags shared by every bench subcommand.
type benchConfig struct {
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
}

func newBenchCommand() *cobra.Command {
	cfg := &benchConfig{}
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

"bench all --runs 3" runs every workload at the sizes of the performance
targets three times and prints medians with min-max, and the targets as
met or missed.`,
	}
	f := cmd.PersistentFlags()
	f.StringVar(&cfg.redisURL, "redis", "", "Redis URL (redis://host:port/db); empty starts an embedded redis-server with persistence off")
	f.BoolVar(&cfg.flush, "flush", false, "allow FLUSHDB of the --redis database between workloads (required with --redis)")
	f.StringVar(&cfg.jsonFile, "json", "", "also write the header, every result, the medians and the targets to this JSON file")
	f.IntVar(&cfg.runs, "runs", 1, "repeat every workload this many times and report the median with min-max")
	f.StringVar(&cfg.vs, "vs", "", "comma-separated peers to run too: go-workflows, asynq")
	f.IntVar(&cfg.orchConcurrency, "orch-concurrency", 0, "worker orchestration concurrency (0: worker default, 8)")
	f.IntVar(&cfg.actConcurrency, "act-concurrency", 0, "worker activity concurrency (0: worker default, 16); also the peers' concurrency when set")
	f.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write a CPU profile of the duroworker side (first run); with several workloads, one file per workload: NAME-<workload>.pprof")
	f.StringVar(&cfg.peerBinary, "peerbench", "", "prebuilt peer program (default: build bench/peers/cmd/peerbench)")
	f.StringVar(&cfg.peersDir, "peers-dir", "", "directory of the bench/peers module (default: found from the working directory)")
	f.DurationVar(&cfg.poll, "poll", 2*time.Millisecond, "how often completion counters are read")
	f.DurationVar(&cfg.timeout, "timeout", 10*time.Minute, "give up on a workload after this long")
	f.BoolVar(&cfg.registerAll, "register-all", false, "workers register all five bench orchestrations, not only the workload's (every registered name adds buckets each fetch reads)")

	cmd.AddCommand(
		newBenchWorkloadCommand(cfg, bench.WorkloadDrain, "N orchestrations of K activities enqueued, then processed", bench.Options{N: 2000, K: 1}),
		newBenchWorkloadCommand(cfg, bench.WorkloadSteady, "Fixed offered rate (or one at a time) and end-to-end latency", bench.Options{N: 2000}),
		newBenchWorkloadCommand(cfg, bench.WorkloadSequential, "N orchestrations x K sequential no-op activities", bench.Options{N: 1, K: 200}),
		newBenchWorkloadCommand(cfg, bench.WorkloadFanout, "N orchestrations x K parallel activities, then join", bench.Options{N: 1, K: 1000, Retry: true}),
		newBenchWorkloadCommand(cfg, bench.WorkloadLong, "1 orchestration x 1000 sequential activities: first 100 vs last 100 steps", bench.Options{N: 1, K: 1000}),
		newBenchWorkloadCommand(cfg, bench.WorkloadTimers, "N orchestrations sleep 1 s then run one activity: timer lateness", bench.Options{N: 1000, Delay: time.Second}),
		newBenchWorkloadCommand(cfg, bench.WorkloadSessions, "K activities pinned to one session across several workers", bench.Options{N: 1, K: 500, Workers: 3}),
		newBenchWorkloadCommand(cfg, bench.WorkloadIdle, "Commands per second of an idle worker", bench.Options{Duration: 10 * time.Second}),
		newBenchWorkloadCommand(cfg, bench.WorkloadInflight, "Worker RSS with N orchestrations in flight", bench.Options{N: 10_000}),
		newBenchFilterCommand(cfg),
		newBenchAllCommand(cfg),
		newBenchReportCommand(),
	)
	return cmd
}

func newBenchWorkloadCommand(cfg *benchConfig, workload, short string, def bench.Options) *cobra.Command {
	o := def
	cmd := &cobra.Command{
		Use:   workload,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c := bench.Case{ID: workload, Workload: workload, Opts: o}
			if workload == bench.WorkloadDrain || workload == bench.WorkloadSteady {
				c.Peers = []string{bench.SystemGoWorkflows, bench.SystemAsynq}
			}
			switch workload {
			case bench.WorkloadSequential, bench.WorkloadFanout, bench.WorkloadLong, bench.WorkloadTimers:
				c.Peers = []string{bench.SystemGoWorkflows}
			}
			c.Name = c.DefaultName()
			return runBenchPlan(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), cfg, []bench.Case{c}, false)
		},
	}
	f := cmd.Flags()
	switch workload {
	case bench.WorkloadIdle:
		f.DurationVar(&o.Duration, "duration", def.Duration, "how long to measure")
	case bench.WorkloadSteady:
		f.IntVar(&o.N, "n", def.N, "orchestrations when one at a time (--rate 0)")
		f.Float64Var(&o.Rate, "rate", 0, "offered starts per second; 0 runs one orchestration at a time")
		f.DurationVar(&o.Duration, "duration", 10*time.Second, "how long to offer --rate")
	default:
		f.IntVar(&o.N, "n", def.N, "orchestrations")
	}
	switch workload {
	case bench.WorkloadDrain, bench.WorkloadSequential, bench.WorkloadFanout, bench.WorkloadLong, bench.WorkloadSessions:
		f.IntVar(&o.K, "k", def.K, "activities per orchestration")
	}
	switch workload {
	case bench.WorkloadFanout:
		f.BoolVar(&o.Retry, "retry", def.Retry, "a retry policy on every activity (3 attempts, exponential backoff from 100 ms)")
		f.IntVar(&o.FailEvery, "fail-every", 0, "fail the first attempt of every n-th activity (needs --retry to complete)")
	case bench.WorkloadTimers:
		f.DurationVar(&o.Delay, "delay", def.Delay, "timer duration")
	case bench.WorkloadSessions:
		f.IntVar(&o.Workers, "workers", def.Workers, "workers sharing the session")
	}
	return cmd
}

func newBenchFilterCommand(cfg *benchConfig) *cobra.Command {
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
			c := bench.Case{ID: bench.CaseFilter, Workload: bench.WorkloadFilter, Filter: bench.FilterOptions{Incompatible: incompatible, Samples: samples}}
			c.Name = c.DefaultName()
			return runBenchPlan(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), cfg, []bench.Case{c}, false)
		},
	}
	cmd.Flags().IntVar(&incompatible, "incompatible", 100_000, "incompatible items of each kind to enqueue")
	cmd.Flags().IntVar(&samples, "samples", 2_000, "timed fetches per phase")
	return cmd
}

func newBenchAllCommand(cfg *benchConfig) *cobra.Command {
	var scale float64
	var only string
	cmd := &cobra.Command{
		Use:   "all",
		Short: "Run every workload at the sizes of the performance targets, and judge the targets",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			plan := bench.StandardPlan(scale)
			if only != "" {
				var keep []bench.Case
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
			return runBenchPlan(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), cfg, plan, true)
		},
	}
	cmd.Flags().Float64Var(&scale, "scale", 1, "shrink every count by this factor (0 < scale <= 1) for a quicker run")
	cmd.Flags().StringVar(&only, "only", "", "comma-separated case ids to run (drain, steady-1, steady-1000, seq-200, seq-many, long, fanout-1000, fanout-many, timers, filter, sessions, idle, inflight)")
	return cmd
}

func newBenchReportCommand() *cobra.Command {
	var markdown bool
	cmd := &cobra.Command{
		Use:   "report FILE.json",
		Short: "Print the tables and targets of a --json file again (--markdown for bench/RESULTS.md)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			var rep benchReport
			if err := json.Unmarshal(data, &rep); err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			out := cmd.OutOrStdout()
			aggs := bench.AggregateRuns(rep.Results)
			var plan []bench.Case
			for _, c := range rep.Plan {
				plan = append(plan, bench.Case{ID: c.ID, Name: c.Name, Workload: c.Workload})
			}
			if len(plan) == 0 { // a report written before the plan was recorded: match the standard plan by name
				for _, c := range bench.StandardPlan(1) {
					for _, a := range aggs {
						if a.Case == c.Name {
							plan = append(plan, c)
							break
						}
					}
				}
			}
			targets := bench.EvaluateTargets(plan, aggs)
			if markdown {
				bench.WriteMarkdown(out, aggs, targets)
				return nil
			}
			rep.Header.print(out)
			fmt.Fprintln(out)
			benchPrintAggregates(out, aggs, rep.Runs)
			if len(targets) > 0 {
				fmt.Fprintln(out)
				benchPrintTargets(out, targets)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&markdown, "markdown", false, "print Markdown tables")
	return cmd
}

// benchReport is what --json writes.
type benchReport struct {
	Header     benchHeader       `json:"header"`
	Command    string            `json:"command"`
	Runs       int               `json:"runs"`
	Plan       []benchPlanCase   `json:"plan"`
	Results    []bench.Result    `json:"results"`
	Aggregates []bench.Aggregate `json:"aggregates"`
	Targets    []bench.Target    `json:"targets,omitempty"`
}

// benchPlanCase identifies a case of the plan in the JSON report, so that
// "bench report" can judge the targets again.
type benchPlanCase struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Workload string `json:"workload"`
}

func runBenchPlan(ctx context.Context, out, errOut io.Writer, cfg *benchConfig, plan []bench.Case, judge bool) error {
	if cfg.runs < 1 {
		cfg.runs = 1
	}
	peers, err := benchParsePeers(cfg.vs)
	if err != nil {
		return err
	}
	if cfg.redisURL != "" && !cfg.flush {
		return errors.New("bench flushes the database between workloads (FLUSHDB): pass --flush to allow it on --redis, or leave --redis empty for an embedded redis-server")
	}
	rdb, redisURL, cleanup, err := benchRedis(ctx, errOut, cfg.redisURL)
	if err != nil {
		return err
	}
	defer cleanup()
	for i := range plan {
		plan[i].Opts.OrchestrationConcurrency = cfg.orchConcurrency
		plan[i].Opts.ActivityConcurrency = cfg.actConcurrency
		plan[i].Opts.Poll = cfg.poll
		plan[i].Opts.Timeout = cfg.timeout
		plan[i].Opts.RegisterAll = cfg.registerAll
	}

	var peer *benchPeerRunner
	if len(peers) > 0 && benchPlanHasPeers(plan, peers) {
		peer, err = benchPreparePeers(ctx, errOut, cfg)
		if err != nil {
			return err
		}
		defer peer.cleanup()
	}
	hdr := benchCollectHeader(ctx, rdb, cfg.redisURL == "", peer)
	hdr.print(out)
	fmt.Fprintln(out)

	var results []bench.Result
	for run := 1; run <= cfg.runs; run++ {
		for _, c := range plan {
			label := fmt.Sprintf("[run %d/%d] %s · %s", run, cfg.runs, c.Name, bench.SystemDuroworker)
			if err := rdb.FlushDB(ctx).Err(); err != nil {
				return fmt.Errorf("FLUSHDB: %w", err)
			}
			bar := newBenchProgressBar(errOut, label)
			c.Opts.Progress = bar.update
			stopProfile := benchStartCPUProfile(errOut, cfg.cpuProfile, c.ID, len(plan) > 1, run == 1)
			r, err := c.Run(ctx, rdb)
			stopProfile()
			r.Case = c.Name
			bar.finish(benchResultSummary(r, err))
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil && r.Error == "" {
				r.Error = err.Error()
			}
			results = append(results, r)
			for _, p := range c.Peers {
				if !benchContains(peers, p) {
					continue
				}
				if err := rdb.FlushDB(ctx).Err(); err != nil {
					return fmt.Errorf("FLUSHDB: %w", err)
				}
				fmt.Fprintf(errOut, "[run %d/%d] %s · %s\n", run, cfg.runs, c.Name, p)
				pr := peer.run(ctx, errOut, redisURL, p, c, cfg)
				pr.Case = c.Name
				fmt.Fprintf(errOut, "    %s\n", benchResultSummary(pr, nil))
				results = append(results, pr)
			}
		}
	}
	_ = rdb.FlushDB(ctx).Err()
	hdr.LoadAvgEnd = benchLoadAvg()

	aggs := bench.AggregateRuns(results)
	benchPrintAggregates(out, aggs, cfg.runs)
	var targets []bench.Target
	if judge {
		targets = bench.EvaluateTargets(plan, aggs)
		fmt.Fprintln(out)
		benchPrintTargets(out, targets)
	}
	if hdr.LoadAvgEnd != "" {
		fmt.Fprintf(out, "\nload average at the end: %s (at the start: %s)\n", hdr.LoadAvgEnd, hdr.LoadAvg)
	}
	if cfg.jsonFile != "" {
		rep := benchReport{Header: hdr, Command: strings.Join(os.Args, " "), Runs: cfg.runs, Results: results, Aggregates: aggs, Targets: targets}
		for _, c := range plan {
			rep.Plan = append(rep.Plan, benchPlanCase{ID: c.ID, Name: c.Name, Workload: c.Workload})
		}
		data, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(cfg.jsonFile, append(data, '\n'), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(out, "\nwrote %s\n", cfg.jsonFile)
	}
	for _, r := range results {
		if r.Error != "" {
			return fmt.Errorf("%d result(s) with errors (see the table)", benchCountErrors(results))
		}
	}
	return nil
}

func benchCountErrors(rs []bench.Result) int {
	n := 0
	for _, r := range rs {
		if r.Error != "" {
			n++
		}
	}
	return n
}

func benchParsePeers(vs string) ([]string, error) {
	var out []string
	for _, p := range strings.Split(vs, ",") {
		p = strings.TrimSpace(p)
		switch p {
		case "":
		case bench.SystemGoWorkflows, bench.SystemAsynq:
			if !benchContains(out, p) {
				out = append(out, p)
			}
		default:
			return nil, fmt.Errorf("--vs %q: want go-workflows and/or asynq", p)
		}
	}
	return out, nil
}

func benchPlanHasPeers(plan []bench.Case, peers []string) bool {
	for _, c := range plan {
		for _, p := range c.Peers {
			if benchContains(peers, p) {
				return true
			}
		}
	}
	return false
}

func benchContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// resultSummary is the one line printed when a workload ends.
func benchResultSummary(r bench.Result, err error) string {
	var parts []string
	if r.Error != "" {
		parts = append(parts, "ERROR: "+r.Error)
	} else if err != nil {
		parts = append(parts, "ERROR: "+err.Error())
	}
	for _, name := range []string{bench.MOrchPerSec, bench.MActPerSec, bench.MP50, bench.MP99, bench.MMsPerStep, bench.MLastOverFirst,
		"lateness " + bench.MP99, bench.MRoundTrips, bench.MIdleSent, bench.MIdleCommands, bench.MRSS, bench.MFilterOrchRatio} {
		if v, ok := r.Get(name); ok {
			parts = append(parts, fmt.Sprintf("%s=%s", name, bench.FormatValue(v)))
		}
	}
	if r.Expected > 0 {
		parts = append(parts, fmt.Sprintf("completed %d/%d", r.Completed, r.Expected))
	}
	return strings.Join(parts, "  ")
}

func benchPrintAggregates(out io.Writer, aggs []bench.Aggregate, runs int) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	rangeHdr := "MIN–MAX"
	if runs == 1 {
		rangeHdr = ""
	}
	fmt.Fprintf(tw, "CASE\tSYSTEM\tMETRIC\tMEDIAN\t%s\tUNIT\n", rangeHdr)
	for _, a := range aggs {
		first := true
		label := a.Case
		if label == "" {
			label = a.Workload + " " + a.Params
		}
		sys := a.System
		status := ""
		if a.OKRuns < a.Runs {
			status = fmt.Sprintf(" (%d/%d runs failed)", a.Runs-a.OKRuns, a.Runs)
		}
		for _, m := range a.Metrics {
			c, s := "", ""
			if first {
				c, s = label, sys+status
				first = false
			}
			rng := ""
			if runs > 1 {
				rng = bench.FormatValue(m.Min) + "–" + bench.FormatValue(m.Max)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c, s, m.Name, bench.FormatValue(m.Median), rng, m.Unit)
		}
		if first {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t\t\n", label, sys+status)
		}
	}
	_ = tw.Flush()
	fmt.Fprintln(out)
	// Settings, notes and errors, once per case and system.
	for _, a := range aggs {
		if a.Settings == "" && len(a.Notes) == 0 && len(a.Errors) == 0 {
			continue
		}
		fmt.Fprintf(out, "%s · %s:", a.Case, a.System)
		if a.Settings != "" {
			fmt.Fprintf(out, " %s", a.Settings)
		}
		fmt.Fprintln(out)
		for _, n := range a.Notes {
			fmt.Fprintf(out, "    note: %s\n", n)
		}
		for _, e := range a.Errors {
			fmt.Fprintf(out, "    error: %s\n", e)
		}
	}
}

func benchPrintTargets(out io.Writer, targets []bench.Target) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tGOAL\tMEDIAN (MIN–MAX)\tSTATUS\tDETAIL")
	for _, t := range targets {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.Name, t.Goal, t.Value, strings.ToUpper(t.Status), t.Detail)
	}
	_ = tw.Flush()
}

// startCPUProfile profiles the duroworker side of one workload when
// --cpuprofile is set; with several workloads each gets its own file.
func benchStartCPUProfile(errOut io.Writer, path, id string, perCase, enabled bool) func() {
	if path == "" || !enabled {
		return func() {}
	}
	if perCase {
		ext := filepath.Ext(path)
		path = strings.TrimSuffix(path, ext) + "-" + id + ext
		if ext == "" {
			path += ".pprof"
		}
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(errOut, "cpuprofile: %v\n", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintf(errOut, "cpuprofile: %v\n", err)
		_ = f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}
}

// benchProgressBar is a single-line progress display on stderr; when stderr is
// not a terminal only the final line is printed.
type benchProgressBar struct {
	mu    sync.Mutex
	w     io.Writer
	label string
	start time.Time
	last  time.Time
	tty   bool
}

func newBenchProgressBar(w io.Writer, label string) *benchProgressBar {
	b := &benchProgressBar{w: w, label: label, start: time.Now(), tty: benchIsTerminal(w)}
	if b.tty {
		fmt.Fprintf(w, "\r\033[K%s ...", label)
	}
	return b
}

func (b *benchProgressBar) update(done, total int64) {
	if !b.tty {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if time.Since(b.last) < 100*time.Millisecond && done < total {
		return
	}
	b.last = time.Now()
	const width = 30
	filled := 0
	if total > 0 {
		filled = int(min(width, done*width/total))
	}
	fmt.Fprintf(b.w, "\r\033[K%s [%s%s] %d/%d %.1fs", b.label, strings.Repeat("=", filled), strings.Repeat(" ", width-filled),
		done, total, time.Since(b.start).Seconds())
}

func (b *benchProgressBar) finish(summary string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tty {
		fmt.Fprint(b.w, "\r\033[K")
	}
	fmt.Fprintf(b.w, "%s (%.1fs)\n    %s\n", b.label, time.Since(b.start).Seconds(), summary)
}

func benchIsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// benchRedis connects to redisURL, or starts an embedded redis-server with
// persistence off. It returns the URL the peers use.
func benchRedis(ctx context.Context, out io.Writer, redisURL string) (*redis.Client, string, func(), error) {
	if redisURL != "" {
		opt, err := parseRedisURL(redisURL) // errors never show the password
		if err != nil {
			return nil, "", nil, err
		}
		rdb := redis.NewClient(opt)
		if err := rdb.Ping(ctx).Err(); err != nil {
			_ = rdb.Close()
			return nil, "", nil, fmt.Errorf("cannot reach Redis at %s: %w%s", redactURL(redisURL), err, connHint(err, opt.TLSConfig != nil))
		}
		return rdb, redisURL, func() { _ = rdb.Close() }, nil
	}
	st, err := startStore(ctx, storeRedisServer, func(s string) { fmt.Fprintln(out, s) })
	if err != nil {
		return nil, "", nil, fmt.Errorf("starting an embedded redis-server (or pass --redis): %w", err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: st.Addr})
	return rdb, "redis://" + st.Addr + "/0", func() { _ = rdb.Close(); _ = st.Close() }, nil
}

// benchHeader is the set of facts printed above every result.
type benchHeader struct {
	Time          string            `json:"time"`
	Host          string            `json:"host"`
	CPU           string            `json:"cpu"`
	CPUs          int               `json:"cpus"`
	MemTotal      string            `json:"mem_total"`
	Kernel        string            `json:"kernel"`
	GoVersion     string            `json:"go_version"`
	OSArch        string            `json:"os_arch"`
	Engine        string            `json:"duroworker_engine"`
	Commit        string            `json:"commit,omitempty"`
	RedisVersion  string            `json:"redis_version"`
	RedisAddr     string            `json:"redis_addr"`
	RedisEmbedded bool              `json:"redis_embedded"`
	Persistence   map[string]string `json:"redis_persistence"`
	LoadAvg       string            `json:"load_average"`
	LoadAvgEnd    string            `json:"load_average_end,omitempty"`
	PeerVersions  map[string]string `json:"peer_versions,omitempty"`
	PeerSettings  map[string]string `json:"peer_settings,omitempty"`
}

func benchCollectHeader(ctx context.Context, rdb *redis.Client, embedded bool, peer *benchPeerRunner) benchHeader {
	h := benchHeader{Time: time.Now().Format(time.RFC3339), CPUs: runtime.NumCPU(), GoVersion: runtime.Version(),
		OSArch: runtime.GOOS + "/" + runtime.GOARCH, Engine: engine.Version, RedisAddr: rdb.Options().Addr, RedisEmbedded: embedded,
		Persistence: map[string]string{}}
	h.Host, _ = os.Hostname()
	h.CPU = benchFirstMatch("/proc/cpuinfo", "model name")
	if mem := benchFirstMatch("/proc/meminfo", "MemTotal"); mem != "" {
		h.MemTotal = mem
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		h.Kernel = strings.TrimSpace(string(b))
	}
	h.LoadAvg = benchLoadAvg()
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		h.Commit = strings.TrimSpace(string(out))
	}
	info, _ := rdb.Info(ctx, "server", "persistence").Result()
	f := bench.InfoFields(info)
	h.RedisVersion = f["redis_version"]
	for _, k := range []string{"aof_enabled", "rdb_bgsave_in_progress", "rdb_changes_since_last_save"} {
		h.Persistence[k] = f[k]
	}
	for _, k := range []string{"appendonly", "appendfsync", "save", "maxmemory", "maxmemory-policy"} {
		if cfg, err := rdb.ConfigGet(ctx, k).Result(); err == nil {
			h.Persistence[k] = cfg[k]
		}
	}
	if peer != nil {
		h.PeerVersions = peer.versions
		h.PeerSettings = peer.settings
	}
	return h
}

func (h benchHeader) print(out io.Writer) {
	commit := ""
	if h.Commit != "" {
		commit = ", commit " + h.Commit
	}
	fmt.Fprintf(out, "duroworker engine %s%s, %s, %s, host %s\n", h.Engine, commit, h.GoVersion, h.OSArch, h.Host)
	fmt.Fprintf(out, "machine: %s, %d CPUs, %s memory, kernel %s, load average %s\n", benchOrQ(h.CPU), h.CPUs, benchOrQ(h.MemTotal), benchOrQ(h.Kernel), benchOrQ(h.LoadAvg))
	where := "at " + h.RedisAddr
	if h.RedisEmbedded {
		where = "embedded at " + h.RedisAddr
	}
	save := h.Persistence["save"]
	if save == "" {
		save = `""`
	}
	fmt.Fprintf(out, "redis %s %s: appendonly=%s appendfsync=%s save=%s (aof_enabled=%s, rdb_bgsave_in_progress=%s)\n",
		benchOrQ(h.RedisVersion), where, benchOrQ(h.Persistence["appendonly"]), benchOrQ(h.Persistence["appendfsync"]), save,
		benchOrQ(h.Persistence["aof_enabled"]), benchOrQ(h.Persistence["rdb_bgsave_in_progress"]))
	for _, p := range []string{bench.SystemGoWorkflows, bench.SystemAsynq} {
		if v, ok := h.PeerVersions[p]; ok {
			fmt.Fprintf(out, "peer %s %s: %s\n", p, v, h.PeerSettings[p])
		}
	}
}

// benchLoadAvg returns the 1, 5 and 15 minute load averages: on a shared
// machine they say how much else ran meanwhile.
func benchLoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func benchOrQ(s string) string {
	if s == "" {
		return "?"
	}
	return s
}

func benchFirstMatch(path, prefix string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == prefix {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// benchPeerRunner runs the peer program (bench/peers/cmd/peerbench).
type benchPeerRunner struct {
	binary   string
	tmpDir   string
	versions map[string]string
	settings map[string]string
}

// preparePeers builds the peer program (unless --peerbench names one) and
// asks it for the versions and settings of the peers.
func benchPreparePeers(ctx context.Context, errOut io.Writer, cfg *benchConfig) (*benchPeerRunner, error) {
	p := &benchPeerRunner{binary: cfg.peerBinary}
	if p.binary == "" {
		dir := cfg.peersDir
		if dir == "" {
			var err error
			if dir, err = benchFindPeersDir(); err != nil {
				return nil, err
			}
		}
		tmp, err := os.MkdirTemp("", "duroworker-peerbench-*")
		if err != nil {
			return nil, err
		}
		p.tmpDir = tmp
		p.binary = filepath.Join(tmp, "peerbench")
		fmt.Fprintf(errOut, "building the peer program in %s ...\n", dir)
		build, err := benchPeerBuild(ctx, dir, tmp, p.binary)
		if err != nil {
			p.cleanup()
			return nil, err
		}
		build.Stdout, build.Stderr = errOut, errOut
		if err := build.Run(); err != nil {
			p.cleanup()
			return nil, fmt.Errorf("building bench/peers/cmd/peerbench in %s: %w", dir, err)
		}
	}
	out, err := exec.CommandContext(ctx, p.binary, "-info").Output()
	if err != nil {
		p.cleanup()
		return nil, fmt.Errorf("%s -info: %w", p.binary, err)
	}
	var info struct {
		Versions map[string]string `json:"versions"`
		Settings map[string]string `json:"settings"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		p.cleanup()
		return nil, fmt.Errorf("%s -info: %w", p.binary, err)
	}
	p.versions, p.settings = info.Versions, info.Settings
	return p, nil
}

// benchPeerBuild returns the command that builds the peer program of the
// bench/peers module in dir into binary. -mod=mod may have to add
// requirements or checksums: it works on copies of go.mod and go.sum in tmp
// (-modfile), so that the user's checkout is never rewritten.
func benchPeerBuild(ctx context.Context, dir, tmp, binary string) (*exec.Cmd, error) {
	modfile := filepath.Join(tmp, "go.mod")
	for _, f := range []struct {
		name     string
		required bool
	}{{"go.mod", true}, {"go.sum", false}} {
		b, err := os.ReadFile(filepath.Join(dir, f.name))
		if errors.Is(err, fs.ErrNotExist) && !f.required {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("copying the peers module file: %w", err)
		}
		if err := os.WriteFile(filepath.Join(tmp, f.name), b, 0o644); err != nil {
			return nil, fmt.Errorf("copying the peers module file: %w", err)
		}
	}
	build := exec.CommandContext(ctx, "go", "build", "-mod=mod", "-modfile="+modfile, "-o", binary, "./cmd/peerbench")
	build.Dir = dir
	return build, nil
}

func (p *benchPeerRunner) cleanup() {
	if p.tmpDir != "" {
		_ = os.RemoveAll(p.tmpDir)
	}
}

// findPeersDir looks for bench/peers/go.mod from the working directory up.
func benchFindPeersDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		cand := filepath.Join(dir, "bench", "peers")
		if _, err := os.Stat(filepath.Join(cand, "go.mod")); err == nil {
			return cand, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("bench/peers not found from the working directory: run from the duroworker repository, or pass --peers-dir or --peerbench")
		}
		dir = parent
	}
}

// run runs one case on one peer; failures become a result with an error.
func (p *benchPeerRunner) run(ctx context.Context, errOut io.Writer, redisURL, system string, c bench.Case, cfg *benchConfig) bench.Result {
	o := c.Opts
	args := []string{"-redis", redisURL, "-system", system, "-workload", c.Workload, "-case", c.Name,
		"-n", strconv.Itoa(o.N), "-k", strconv.Itoa(o.K), "-rate", strconv.FormatFloat(o.Rate, 'g', -1, 64),
		"-duration", o.Duration.String(), "-delay", o.Delay.String(), "-poll", cfg.poll.String(), "-timeout", cfg.timeout.String()}
	if o.Retry {
		args = append(args, "-retry")
	}
	if cfg.actConcurrency > 0 {
		args = append(args, "-concurrency", strconv.Itoa(cfg.actConcurrency))
	}
	cmd := exec.CommandContext(ctx, p.binary, args...)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = errOut
	failed := bench.Result{Workload: c.Workload, System: system, Case: c.Name, Expected: 1}
	if err := cmd.Run(); err != nil {
		failed.Error = fmt.Sprintf("peerbench: %v", err)
		if rs, derr := bench.DecodeResults(stdout.Bytes()); derr == nil && len(rs) == 1 {
			rs[0].Error = strings.TrimSpace(rs[0].Error + " " + failed.Error)
			return rs[0]
		}
		return failed
	}
	rs, err := bench.DecodeResults(stdout.Bytes())
	if err != nil || len(rs) != 1 {
		failed.Error = fmt.Sprintf("peerbench output: %v", err)
		return failed
	}
	return rs[0]
}
