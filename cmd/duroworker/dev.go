package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/cmd/duroworker/internal/dashboard"
	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/examples/basics"
	"github.com/duroworker/duroworker/examples/healthmonitor"
	"github.com/duroworker/duroworker/queue"
	"github.com/duroworker/duroworker/worker"
)

// devOptions are the flags of `duroworker dev`.
type devOptions struct {
	// Store is auto, redis-server or miniredis.
	Store string
	// Timeout bounds the whole run.
	Timeout time.Duration
	// Verbose logs the workers at debug level, orchestration traces included.
	Verbose bool
	// Serve keeps the store and three worker nodes up after the scenarios,
	// until interrupted, so other commands can be tried against them.
	Serve bool
	// AllowEvictingRedis is worker.Options.AllowEvictingRedis for every node.
	AllowEvictingRedis bool
	// LogFormat is the workers' log format on stderr: text or json.
	LogFormat string
	// Port is where --serve serves the dashboard on 127.0.0.1, from the
	// start of the scenarios; 0 picks a free port, -1 serves none.
	Port int
}

func newDevCommand() *cobra.Command {
	opts := devOptions{Store: storeAuto, Timeout: 60 * time.Second, LogFormat: logFormatText, Port: 8088}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the example scenarios end to end against an embedded Redis",
		Long: `dev starts an embedded Redis and worker nodes in this process and runs the
example orchestrations end to end, printing live progress and a summary:

  hello            one activity
  fan-out          10 parallel activities joined and summed
  approval         an external event racing a durable timer, and its timeout
  rolling-upgrade  the versioned health monitor: node-a runs only 1.0.0;
                   node-b (1.0.0 to 1.0.2) is deployed and node-a shut down;
                   the running instance switches to 1.0.2 at its next
                   continue-as-new, never in the middle of an execution, and
                   a new instance runs 1.0.2 from its first execution
  pinning          an Exact("1.0.1") policy keeps new instances on 1.0.1

The store is a redis-server child process on a free loopback port (with
persistence off, in a temporary directory) when redis-server is on PATH,
otherwise an in-process miniredis. dev exits 0 only if every scenario reached
its expected state. Ctrl-C stops the workers and the store cleanly and exits
non-zero; a second Ctrl-C kills them.`,
		Example: `  duroworker dev
  duroworker dev --store miniredis --verbose
  duroworker dev --serve        # then open http://127.0.0.1:8088/ (the dashboard), or in another terminal: duroworker list --redis <printed URL> --prefix dev
  duroworker dev --serve --port 9000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDev(cmd.Context(), opts, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Store, "store", opts.Store, "embedded store: auto (redis-server if on PATH, else miniredis), redis-server or miniredis")
	f.BoolVar(&opts.Serve, "serve", false, "keep the store and 3 worker nodes up after the scenarios until Ctrl-C, print the Redis URL for the other commands, and serve the dashboard (see --port)")
	f.IntVar(&opts.Port, "port", opts.Port, "with --serve: serve the dashboard (actions on) at http://127.0.0.1:PORT/ while the scenarios run and after; 0 picks a free port, -1 none")
	f.DurationVar(&opts.Timeout, "timeout", opts.Timeout, "bound on the whole run")
	f.BoolVar(&opts.AllowEvictingRedis, "allow-evicting-redis", false, "UNSAFE: let the worker nodes run on a store whose maxmemory-policy may evict keys (the embedded stores never do)")
	f.BoolVarP(&opts.Verbose, "verbose", "v", false, "log the workers at debug level on stderr, orchestration traces ([v1.0.x] ...) included")
	f.StringVar(&opts.LogFormat, "log-format", opts.LogFormat, "the workers' log format on stderr: text or json")
	return cmd
}

// runDev runs the dev scenarios, writing progress and the summary to stdout
// and the workers' logs to stderr. It returns an error if a scenario did not
// reach its expected state, the run timed out, or it was interrupted by
// SIGINT or SIGTERM.
func runDev(parent context.Context, opts devOptions, stdout, stderr io.Writer) (err error) {
	if opts.Timeout <= 0 {
		return usagef("--timeout must be positive, got %s", opts.Timeout)
	}
	switch opts.Store {
	case storeAuto, storeRedisServer, storeMiniredis:
	default:
		return usagef("--store %q: want %s, %s or %s", opts.Store, storeAuto, storeRedisServer, storeMiniredis)
	}
	level := slog.LevelWarn
	if opts.Verbose {
		level = slog.LevelDebug
	}
	// One handler for every node, so that their lines never interleave.
	logger, err := newLogger(stderr, opts.LogFormat, level)
	if err != nil {
		return asUsage(err)
	}
	if parent == nil {
		parent = context.Background()
	}
	p := newProgress(stdout)

	// Interruption: the first signal cancels the run, which then shuts
	// down cleanly; a second one kills the store and exits at once.
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	var embedded atomic.Pointer[embeddedStore]
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case sig := <-sigs:
			p.Printf("received %s: shutting down (send it again to kill)", signalName(sig))
			cancel(fmt.Errorf("interrupted by %s", signalName(sig)))
		case <-done:
			return
		}
		select {
		case sig := <-sigs:
			fmt.Fprintf(stderr, "duroworker: second %s: killing the store and exiting\n", signalName(sig))
			if s := embedded.Load(); s != nil {
				s.Kill()
			}
			os.Exit(1)
		case <-done:
		}
	}()
	serveCtx := ctx // --serve outlives --timeout, not an interruption
	ctx, cancelTimeout := context.WithTimeoutCause(ctx, opts.Timeout, reword(errTimedOut, "timed out after %s (--timeout)", opts.Timeout))
	defer cancelTimeout()

	st, err := startStore(ctx, opts.Store, func(msg string) { p.Printf("store: %s", msg) })
	if err != nil {
		if cause := context.Cause(ctx); cause != nil {
			return cause
		}
		return err
	}
	embedded.Store(st)
	p.Printf("store: %s", st.Description)
	defer func() {
		if cerr := st.Close(); cerr != nil {
			p.Printf("store: %v", cerr)
			if err == nil {
				err = cerr
			}
			return
		}
		if st.PID != 0 {
			p.Printf("store: redis-server (pid %d) stopped, its directory removed", st.PID)
		} else {
			p.Printf("store: miniredis stopped")
		}
	}()

	rdb := redis.NewClient(&redis.Options{Addr: st.Addr})
	defer rdb.Close()
	setRedisLogger(logger) // go-redis's own lines at debug level, not raw on stderr
	d := &devRun{
		p:             p,
		store:         queue.New(rdb, queue.Options{Prefix: "dev"}),
		logger:        logger,
		sum:           &summary{},
		allowEvicting: opts.AllowEvictingRedis,
	}
	d.client = client.New(d.store)
	defer d.client.Close()
	if opts.Serve && opts.Port >= 0 {
		stop, err := d.startDashboard(serveCtx, opts.Port)
		if err != nil {
			return err
		}
		defer stop()
	}

	d.runScenarios(ctx)
	d.stopAll()

	p.Locked(func(w io.Writer) {
		fmt.Fprintln(w)
		d.sum.print(w)
	})
	p.Printf("run took %s", p.Elapsed().Round(time.Millisecond))

	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if n := d.sum.failed(); n > 0 {
		return fmt.Errorf("%d of %d checks did not reach their expected state", n, len(d.sum.results()))
	}
	if opts.Serve {
		return d.serve(serveCtx, st)
	}
	return nil
}

// serve keeps three worker nodes serving the examples until ctx ends and
// tells the user how to reach them.
func (d *devRun) serve(ctx context.Context, st *embeddedStore) error {
	orchs, acts, err := exampleRegistries(healthmonitor.LatestVersion)
	if err != nil {
		return err
	}
	var nodes []*worker.Worker
	for i := 1; i <= 3; i++ {
		w, err := worker.New(d.store, orchs, acts, worker.Options{NodeID: fmt.Sprintf("serve-%d", i), Logger: d.logger, BlockTimeout: 200 * time.Millisecond,
			AllowEvictingRedis: d.allowEvicting})
		if err == nil {
			err = w.Start(ctx)
		}
		if err != nil {
			return fmt.Errorf("starting serve node %d: %w", i, err)
		}
		nodes = append(nodes, w)
	}
	url := "redis://" + st.Addr + "/0"
	d.p.Printf("serving: 3 worker nodes on %s, prefix %q; try in another terminal:", url, "dev")
	d.p.Printf("  duroworker start %s world --redis %s --prefix dev --wait", basics.HelloName, url)
	d.p.Printf("  duroworker list --redis %s --prefix dev", url)
	d.p.Printf("press Ctrl-C to stop")
	<-ctx.Done()
	for _, w := range nodes {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = w.Shutdown(sctx)
		cancel()
	}
	d.p.Printf("serve nodes stopped")
	return nil
}

// startDashboard serves the dashboard of the dev namespace on
// 127.0.0.1:port until the returned stop is called or ctx ends. Actions are
// on: the store is a throwaway on loopback.
func (d *devRun) startDashboard(ctx context.Context, port int) (stop func(), err error) {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("--port %d: %w", port, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	cfg := dashboard.Config{Namespaces: []dashboard.Namespace{{Prefix: "dev", Client: d.client, Store: d.store}},
		AllowActions: true, SampleEvery: time.Second, Logger: d.logger}
	go func() {
		defer close(done)
		err := serveDashboardOn(ctx, ln, cfg, func(url string) { d.p.Printf("dashboard: %s (actions on)", url) })
		if err != nil {
			d.p.Printf("dashboard: %v", err)
		}
	}()
	return func() { cancel(); <-done }, nil
}

// devRun is the state of one dev run: the store, the client, the worker
// nodes and the results.
type devRun struct {
	p      *progress
	store  *queue.Store
	client *client.Client
	logger *slog.Logger
	sum    *summary
	nodes  []*devNode
	nodeA  *devNode // the old deployment
	// allowEvicting is worker.Options.AllowEvictingRedis.
	allowEvicting bool
}

// devNode is one worker node.
type devNode struct {
	id      string
	w       *worker.Worker
	stopped bool
}

// scenario is one step of the dev run. run records its checks; an error
// means the scenario could not be carried out.
type scenario struct {
	name string
	run  func(ctx context.Context) error
}

func (d *devRun) runScenarios(ctx context.Context) {
	// node-a is the old deployment: the basics and the health monitor 1.0.0
	// only. It runs the first scenarios and is replaced in rolling-upgrade.
	var err error
	d.nodeA, err = d.startNode("node-a", "old deployment: basics, health monitor 1.0.0 only",
		healthmonitor.Register(engine.NewOrchestrationRegistry(), healthmonitor.V1_0_0))
	if err != nil {
		d.p.Printf("%v", err)
		d.sum.add(result{Scenario: "setup", Instance: "-", Expected: "node-a starts", Got: err.Error()})
		return
	}
	scenarios := []scenario{
		{"hello", d.hello},
		{"fan-out", d.fanOut},
		{"approval", d.approval},
		{"rolling-upgrade", d.rollingUpgrade},
		{"pinning", d.pinning},
	}
	for _, s := range scenarios {
		if ctx.Err() != nil {
			d.sum.add(result{Scenario: s.name, Instance: "-", Expected: "scenario runs", Got: "not run: " + context.Cause(ctx).Error()})
			continue
		}
		if err := s.run(ctx); err != nil {
			if cause := context.Cause(ctx); cause != nil {
				err = fmt.Errorf("%w (%v)", err, cause)
			}
			d.p.Printf("%s: %v", s.name, err)
			d.sum.add(result{Scenario: s.name, Instance: "-", Expected: "scenario runs", Got: err.Error()})
		}
	}
}

// startNode starts a worker node with the basics and the given health
// monitor registry, and every example activity.
func (d *devRun) startNode(id, what string, orchs *engine.OrchestrationRegistryBuilder) (*devNode, error) {
	basics.Register(orchs)
	reg, err := orchs.Build()
	if err != nil {
		return nil, fmt.Errorf("%s: registry: %w", id, err)
	}
	acts := engine.NewActivityRegistry()
	basics.Activities(acts)
	healthmonitor.Activities(acts)
	actReg, err := acts.Build()
	if err != nil {
		return nil, fmt.Errorf("%s: activity registry: %w", id, err)
	}
	w, err := worker.New(d.store, reg, actReg, worker.Options{
		NodeID:             id,
		BlockTimeout:       200 * time.Millisecond,
		Logger:             d.logger.With("node", id),
		AllowEvictingRedis: d.allowEvicting,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", id, err)
	}
	// The dispatchers outlive the run's context: a node stops only through
	// Shutdown, so that an interrupted run still finishes or releases its
	// in-flight work.
	if err := w.Start(context.Background()); err != nil {
		return nil, fmt.Errorf("starting %s: %w", id, err)
	}
	n := &devNode{id: id, w: w}
	d.nodes = append(d.nodes, n)
	d.p.Printf("%s: started (%s)", id, what)
	return n, nil
}

// stopNode shuts a node down gracefully, giving it 5 seconds.
func (d *devRun) stopNode(n *devNode) error {
	if n.stopped {
		return nil
	}
	n.stopped = true
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.w.Shutdown(ctx); err != nil {
		d.p.Printf("%s: shutdown: %v", n.id, err)
		return fmt.Errorf("shutting down %s: %w", n.id, err)
	}
	d.p.Printf("%s: shut down gracefully (%.1fms)", n.id, float64(time.Since(began).Microseconds())/1000)
	return nil
}

// stopAll shuts down every node still running.
func (d *devRun) stopAll() {
	for _, n := range d.nodes {
		_ = d.stopNode(n)
	}
}

// signalName names the signals dev handles the way a shell user knows them.
func signalName(sig os.Signal) string {
	switch sig {
	case os.Interrupt:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return sig.String()
}
