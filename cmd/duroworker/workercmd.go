package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/duroworker/duroworker/capability"
	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/examples/basics"
	"github.com/duroworker/duroworker/examples/healthmonitor"
	"github.com/duroworker/duroworker/queue"
	"github.com/duroworker/duroworker/session"
	"github.com/duroworker/duroworker/worker"
)

// workerOptions are the flags of `duroworker worker`.
type workerOptions struct {
	NodeID                   string
	OrchestrationConcurrency int
	ActivityConcurrency      int
	OrchestrationLock        time.Duration
	ActivityLock             time.Duration
	MaxAttempts              int
	SupportedReplayVersions  string
	Tags                     string
	MaxSessions              int
	LogLevel                 string
	LogFormat                string
	MetricsAddr              string
	MonitorUpTo              string
	BlockTimeout             time.Duration
	ShutdownTimeout          time.Duration
	AllowEvictingRedis       bool
}

func newWorkerCommand() *cobra.Command {
	opts := workerOptions{ShutdownTimeout: 30 * time.Second, LogLevel: "info", LogFormat: logFormatText, MonitorUpTo: healthmonitor.LatestVersion}
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run a worker node serving the built-in example orchestrations",
		Long: `worker runs one worker node of a fleet: it fetches orchestration turns and
activities from the Redis namespace and runs them, until SIGINT or SIGTERM;
it then stops fetching, lets running work finish for up to
--shutdown-timeout, releases what did not finish to other nodes, and exits.

This binary serves the built-in examples only:
  examples::orchestration::hello            basics (1.0.0)
  examples::orchestration::fan-out          basics (1.0.0)
  examples::orchestration::approval         basics (1.0.0)
  examples::orchestration::health-monitor   1.0.0, 1.0.1, 1.0.2 (up to --monitor-up-to)
and their activities. A team serves its own orchestrations with its own
worker binary, a few lines of Go around worker.New: see docs/cli.md.

--tags selects activities by tag: "default" (untagged only, the default),
"any", "none" (an orchestration-only node), "gpu,eu" (only those tags) or
"default,gpu" (untagged and gpu).

--metrics-addr serves the worker's OpenTelemetry metrics (orchestration starts,
completions, failures, poison, activity executions, turn and activity
durations) on http://ADDR/metrics in the Prometheus text format. The
store-wide counters are in "duroworker metrics" and "duroworker queues". The
same server adds the Go runtime and process metrics (go_*, process_*) and two
probes: /healthz answers 200 "ok" while the process runs, /readyz answers 200
only when Redis answers PING within 1s and the node advertised itself within
its last three heartbeats, and 503 with the reason otherwise, including from
the moment SIGINT/SIGTERM starts the shutdown.`,
		Example: `  duroworker worker --redis redis://10.0.0.5:6379/0 --node-id node-a
  DUROWORKER_REDIS=rediss://app:secret@redis.internal:6380/0 duroworker worker --tags default,gpu
  duroworker worker --monitor-up-to 1.0.0 --node-id old-node   # an old deployment, for a rolling upgrade
  duroworker worker --supported-replay-versions 0.0.0..0.1.0 --max-attempts 5 --log-level debug`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runWorker(cmd, &opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.NodeID, "node-id", "", "node id, in logs and session ownership (default: <hostname>-<pid>-<random>); a restarted node with the same id gets its sessions and locks back; one process per id at a time")
	f.IntVar(&opts.OrchestrationConcurrency, "orchestration-concurrency", 0, fmt.Sprintf("orchestration turns run at once (0: %d; negative: no orchestrations)", worker.DefaultOrchestrationConcurrency))
	f.IntVar(&opts.ActivityConcurrency, "activity-concurrency", 0, fmt.Sprintf("activities run at once (0: %d; negative: no activities)", worker.DefaultActivityConcurrency))
	f.DurationVar(&opts.OrchestrationLock, "orchestration-lock", 0, fmt.Sprintf("instance lock of a turn, renewed while it runs (0: %s)", worker.DefaultOrchestrationLockTimeout))
	f.DurationVar(&opts.ActivityLock, "activity-lock", 0, fmt.Sprintf("work item lock of an activity, renewed while it runs (0: %s)", worker.DefaultActivityLockTimeout))
	f.IntVar(&opts.MaxAttempts, "max-attempts", 0, fmt.Sprintf("fetches of a message before it is poisoned (0: %d)", worker.DefaultMaxAttempts))
	f.StringVar(&opts.SupportedReplayVersions, "supported-replay-versions", "", "engine versions whose executions this node replays, e.g. 0.0.0..0.1.0 (default: up to engine "+engine.Version+")")
	f.StringVar(&opts.Tags, "tags", "default", `activity tags served: "default", "any", "none", "gpu,eu" or "default,gpu"`)
	f.IntVar(&opts.MaxSessions, "max-sessions", 0, "sessions held at once (0: 10; negative: no session activities)")
	f.StringVar(&opts.LogLevel, "log-level", opts.LogLevel, "log level on stderr: debug, info, warn or error")
	f.StringVar(&opts.LogFormat, "log-format", opts.LogFormat, "log format on stderr: text or json")
	f.StringVar(&opts.MetricsAddr, "metrics-addr", "", "serve Prometheus metrics on http://ADDR/metrics and the probes /healthz and /readyz, e.g. :9464 (default: none)")
	f.StringVar(&opts.MonitorUpTo, "monitor-up-to", opts.MonitorUpTo, "highest health monitor version registered: "+strings.Join(healthmonitor.Versions(), ", "))
	f.DurationVar(&opts.BlockTimeout, "block-timeout", 0, fmt.Sprintf("longest idle wait between fetches when no wake-up arrives (0: %s)", worker.DefaultBlockTimeout))
	f.DurationVar(&opts.ShutdownTimeout, "shutdown-timeout", opts.ShutdownTimeout, "on SIGINT/SIGTERM, how long running work may take to finish before it is released to other nodes")
	f.BoolVar(&opts.AllowEvictingRedis, "allow-evicting-redis", false, "UNSAFE: run on a Redis whose maxmemory-policy may evict keys (evicted keys lose work silently)")
	return cmd
}

// parseTags parses --tags.
func parseTags(s string) (worker.TagFilter, error) {
	var tags []string
	for _, t := range strings.Split(s, ",") {
		t = strings.TrimSpace(t)
		if t == "" {
			return worker.TagFilter{}, fmt.Errorf("--tags %q: empty tag", s)
		}
		tags = append(tags, t)
	}
	special := func(word string) bool { return slices.Contains(tags, word) }
	switch {
	case len(tags) == 1 && tags[0] == "any":
		return worker.AnyTag(), nil
	case len(tags) == 1 && tags[0] == "none":
		return worker.NoActivities(), nil
	case special("any") || special("none"):
		return worker.TagFilter{}, fmt.Errorf(`--tags %q: "any" and "none" stand alone`, s)
	}
	var named []string
	withDefault := false
	for _, t := range tags {
		if t == "default" {
			withDefault = true
			continue
		}
		if err := capability.ValidateTag(t); err != nil {
			return worker.TagFilter{}, fmt.Errorf("--tags %q: %w", s, err)
		}
		named = append(named, t)
	}
	if len(named) > worker.MaxWorkerTags {
		return worker.TagFilter{}, fmt.Errorf("--tags %q: %d tags, at most %d", s, len(named), worker.MaxWorkerTags)
	}
	switch {
	case len(named) == 0:
		return worker.DefaultTagsOnly(), nil
	case withDefault:
		return worker.DefaultAndTags(named...), nil
	default:
		return worker.OnlyTags(named...), nil
	}
}

// parseLogLevel parses --log-level.
func parseLogLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("--log-level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// exampleRegistries returns the registries of the built-in examples, with
// the health monitor up to version upTo.
func exampleRegistries(upTo string) (*engine.OrchestrationRegistry, *engine.ActivityRegistry, error) {
	if !slices.Contains(healthmonitor.Versions(), upTo) {
		return nil, nil, fmt.Errorf("--monitor-up-to %q: want one of %s", upTo, strings.Join(healthmonitor.Versions(), ", "))
	}
	b := healthmonitor.Register(engine.NewOrchestrationRegistry(), upTo)
	basics.Register(b)
	orchs, err := b.Build()
	if err != nil {
		return nil, nil, fmt.Errorf("orchestration registry: %w", err)
	}
	ab := engine.NewActivityRegistry()
	basics.Activities(ab)
	healthmonitor.Activities(ab)
	acts, err := ab.Build()
	if err != nil {
		return nil, nil, fmt.Errorf("activity registry: %w", err)
	}
	return orchs, acts, nil
}

// workerSettings validates the flags and builds the worker options. The
// flags that set worker.Options are checked by worker.Options.Validate, as
// worker.New checks them, so that a bad value gives the same message here as
// in a program that embeds the worker.
func (o *workerOptions) workerSettings(logger *slog.Logger) (worker.Options, error) {
	if o.ShutdownTimeout <= 0 {
		return worker.Options{}, fmt.Errorf("--shutdown-timeout must be positive, got %s", o.ShutdownTimeout)
	}
	tags, err := parseTags(o.Tags)
	if err != nil {
		return worker.Options{}, err
	}
	wo := worker.Options{
		NodeID:                   o.NodeID,
		OrchestrationConcurrency: o.OrchestrationConcurrency,
		ActivityConcurrency:      o.ActivityConcurrency,
		OrchestrationLockTimeout: o.OrchestrationLock,
		ActivityLockTimeout:      o.ActivityLock,
		MaxAttempts:              o.MaxAttempts,
		Sessions:                 session.Options{MaxSessions: o.MaxSessions},
		BlockTimeout:             o.BlockTimeout,
		Tags:                     tags,
		Logger:                   logger,
		AllowEvictingRedis:       o.AllowEvictingRedis,
	}
	if o.SupportedReplayVersions != "" {
		r, err := capability.ParseRange(o.SupportedReplayVersions)
		if err != nil {
			return worker.Options{}, fmt.Errorf("--supported-replay-versions: %w", err)
		}
		wo.SupportedReplayVersions = &r
	}
	if err := wo.Validate(); err != nil {
		return worker.Options{}, err
	}
	return wo, nil
}

// runWorker runs a worker node until the command's context ends or
// SIGINT/SIGTERM arrives, then shuts it down gracefully.
func runWorker(cmd *cobra.Command, o *workerOptions) error {
	parent := cmd.Context()
	if parent == nil {
		parent = context.Background()
	}
	level, err := parseLogLevel(o.LogLevel)
	if err != nil {
		return asUsage(err)
	}
	logger, err := newLogger(cmd.ErrOrStderr(), o.LogFormat, level)
	if err != nil {
		return asUsage(err)
	}
	wo, err := o.workerSettings(logger)
	if err != nil {
		return asUsage(err)
	}
	orchs, acts, err := exampleRegistries(o.MonitorUpTo)
	if err != nil {
		return asUsage(err)
	}

	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The metrics server starts before the connection, so that /healthz
	// answers (and /readyz says why not ready) while the node waits for a
	// Redis that is loading its data set.
	var ms *metricsServer
	if o.MetricsAddr != "" {
		if ms, err = startMetrics(o.MetricsAddr); err != nil {
			return err
		}
		defer func() {
			cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = ms.Close(cctx)
		}()
		wo.MeterProvider = ms.Provider
		logger.Info("serving metrics", "url", "http://"+ms.Addr+"/metrics")
	}
	cf := connectionFor(cmd)
	cn, err := cf.connect(ctx, cmd, logger)
	if err != nil {
		return err
	}
	defer cn.Close()

	w, err := worker.New(cn.store, orchs, acts, wo)
	if err != nil {
		return err
	}
	// The dispatchers outlive ctx: the node stops only through Shutdown,
	// so that running work gets its chance to finish.
	if err := w.Start(context.Background()); err != nil {
		if errors.Is(err, queue.ErrEvictingRedis) {
			return fmt.Errorf("starting the worker: %w; --allow-evicting-redis overrides this, unsafely", err)
		}
		return fmt.Errorf("starting the worker: %w", err)
	}
	eff := w.Options()
	ready := &readiness{
		ping:           func(ctx context.Context) error { return cn.rdb.Ping(ctx).Err() },
		lastAdvertised: w.LastAdvertised,
		// the node's advertisement lives three heartbeats: older than
		// that, the fleet no longer sees it
		maxAge: 3 * eff.NodeHeartbeat,
	}
	if ms != nil {
		ms.SetReadiness(ready)
	}
	replay := "up to " + engine.Version
	if eff.SupportedReplayVersions != nil {
		replay = eff.SupportedReplayVersions.String()
	}
	logger.Info("worker started",
		"node", w.NodeID(), "redis", cn.where, "prefix", cf.Prefix, "engine", engine.Version,
		"orchestrations", fmt.Sprintf("basics, health-monitor up to %s", o.MonitorUpTo),
		"orchestration_concurrency", eff.OrchestrationConcurrency, "activity_concurrency", eff.ActivityConcurrency,
		"tags", eff.Tags.String(), "replay", replay, "max_attempts", eff.MaxAttempts)

	<-ctx.Done()
	why := "context cancelled"
	if parent.Err() == nil {
		why = "signal received"
	}
	ready.Drain() // /readyz: 503 from now on
	logger.Info("shutting down", "node", w.NodeID(), "reason", why, "deadline", o.ShutdownTimeout)
	began := time.Now()
	sctx, cancel := context.WithTimeout(context.Background(), o.ShutdownTimeout)
	defer cancel()
	if err := w.Shutdown(sctx); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("shutdown: running work did not finish within %s and was released to other nodes", o.ShutdownTimeout)
		}
		return fmt.Errorf("shutdown: %w", err)
	}
	logger.Info("worker stopped", "node", w.NodeID(), "took", time.Since(began).Round(time.Millisecond))
	return nil
}
