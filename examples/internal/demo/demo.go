// Package demo is the plumbing shared by the example programs under
// examples/: the -redis flag with an in-process miniredis as the fallback,
// worker nodes with settings suited to a demo (short blocking, short
// backoff), a logger that prints what orchestration code traces, and a
// per-execution summary read back from history. It is not part of
// duroworker's API; the programs' main.go files hold what is worth reading.
package demo

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/queue"
	"github.com/duroworker/duroworker/worker"
)

// Timeout bounds a whole scenario; the programs finish in a few seconds.
const Timeout = 60 * time.Second

// Env is one run of an example program: a store, a client and the worker
// nodes the scenario starts.
type Env struct {
	// Client starts and inspects instances.
	Client *client.Client
	// Store is the namespace the nodes and the client share.
	Store *queue.Store
	// Redis is the connection under Store, for scenarios that look at keys.
	Redis *redis.Client

	out     *syncWriter
	began   time.Time
	verbose bool
	// warnings makes the node loggers print warnings and errors too.
	warnings atomic.Bool

	mr     *miniredis.Miniredis // nil with -redis
	prefix string
	nodes  []*worker.Worker
}

// Run parses args (-redis URL, -v), connects to Redis (or starts an
// in-process miniredis), runs scenario, and returns the exit code: 0 when
// scenario returned nil, 1 when it failed, 2 for bad flags.
func Run(name string, args []string, out io.Writer, scenario func(ctx context.Context, env *Env) error) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	redisURL := fs.String("redis", "", "Redis URL (redis://host:port/db) or host:port; empty runs an in-process miniredis")
	verbose := fs.Bool("v", false, "print every worker log line (info and above), not only orchestration traces")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(out, "%s: unexpected arguments %q\n", name, fs.Args())
		return 2
	}
	env, err := connect(name, *redisURL, *verbose, out)
	if err != nil {
		fmt.Fprintf(out, "%s: %v\n", name, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	err = scenario(ctx, env)
	env.Close()
	if err != nil {
		env.Printf("FAIL: %v", err)
		return 1
	}
	env.Printf("PASS: the scenario reached its expected outcome")
	return 0
}

func connect(name, redisURL string, verbose bool, out io.Writer) (*Env, error) {
	env := &Env{out: &syncWriter{w: out}, began: time.Now(), verbose: verbose}
	var opts *redis.Options
	if redisURL == "" {
		mr, err := miniredis.Run()
		if err != nil {
			return nil, fmt.Errorf("starting miniredis: %w", err)
		}
		env.mr = mr
		env.prefix = "examples:" + name
		opts = &redis.Options{Addr: mr.Addr()}
		env.Printf("store: in-process miniredis at %s (use -redis URL for a real Redis)", mr.Addr())
	} else {
		var err error
		if strings.Contains(redisURL, "://") {
			if opts, err = redis.ParseURL(redisURL); err != nil {
				return nil, fmt.Errorf("-redis: %w", err)
			}
		} else {
			opts = &redis.Options{Addr: redisURL}
		}
		// A fresh namespace per run, so that runs never see each other's
		// instances; Close deletes it.
		env.prefix = fmt.Sprintf("examples:%s:%d", name, time.Now().UnixNano())
	}
	env.Redis = redis.NewClient(opts)
	if env.mr == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := env.Redis.Ping(ctx).Err(); err != nil {
			_ = env.Redis.Close()
			return nil, fmt.Errorf("connecting to %s: %w", opts.Addr, err)
		}
		env.Printf("store: Redis at %s, namespace %q (deleted at exit)", opts.Addr, env.prefix)
	}
	env.Store = queue.New(env.Redis, queue.Options{Prefix: env.prefix})
	env.Client = client.New(env.Store)
	return env, nil
}

// Close shuts down the nodes still running, deletes the run's namespace on
// a real Redis and closes the connections.
func (e *Env) Close() {
	for len(e.nodes) > 0 {
		if err := e.StopNode(e.nodes[0]); err != nil {
			e.Printf("%v", err)
		}
	}
	_ = e.Client.Close()
	if e.mr == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		iter := e.Redis.Scan(ctx, 0, "{"+e.prefix+"}:*", 1000).Iterator()
		for iter.Next(ctx) {
			e.Redis.Del(ctx, iter.Val())
		}
	}
	_ = e.Redis.Close()
	if e.mr != nil {
		e.mr.Close()
	}
}

// Printf prints one line, prefixed with the time since the start of the run.
func (e *Env) Printf(format string, args ...any) {
	e.out.printf("%7.3fs  %s\n", time.Since(e.began).Seconds(), fmt.Sprintf(format, args...))
}

// ShowWarnings makes the nodes' loggers print warnings and errors (not
// only orchestration traces) from now on.
func (e *Env) ShowWarnings(on bool) { e.warnings.Store(on) }

// StartNode starts a worker node. Options left zero get demo values: opts.NodeID
// is id, the logger prints orchestration traces, idle dispatchers block for
// 100 ms and unregistered work backs off from 20 ms. The short BlockTimeout
// matters for timers: a dispatcher that is already waiting is not woken when
// a turn creates a timer, so a due timer may wait up to BlockTimeout (5 s by
// default) for the next fetch to promote it.
func (e *Env) StartNode(id string, orchs *engine.OrchestrationRegistry, acts *engine.ActivityRegistry, opts worker.Options) (*worker.Worker, error) {
	opts.NodeID = id
	if opts.Logger == nil {
		opts.Logger = slog.New(&handler{env: e}).With("node", id)
	}
	if opts.BlockTimeout == 0 {
		opts.BlockTimeout = 100 * time.Millisecond
	}
	if opts.UnregisteredBackoffBase == 0 {
		opts.UnregisteredBackoffBase = 20 * time.Millisecond
		opts.UnregisteredBackoffMax = 200 * time.Millisecond
	}
	w, err := worker.New(e.Store, orchs, acts, opts)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", id, err)
	}
	if err := w.Start(context.Background()); err != nil {
		return nil, fmt.Errorf("starting node %s: %w", id, err)
	}
	e.nodes = append(e.nodes, w)
	e.Printf("%s: started; registers %s", id, describeRegistry(orchs))
	return w, nil
}

// StopNode shuts a node down gracefully, giving it 5 seconds. Stopping a
// node twice is a no-op.
func (e *Env) StopNode(w *worker.Worker) error {
	for i, n := range e.nodes {
		if n == w {
			e.nodes = append(e.nodes[:i], e.nodes[i+1:]...)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := w.Shutdown(ctx); err != nil && !errors.Is(err, worker.ErrNotStarted) {
				return fmt.Errorf("shutting down %s: %w", w.NodeID(), err)
			}
			e.Printf("%s: shut down", w.NodeID())
			return nil
		}
	}
	return nil
}

func describeRegistry(r *engine.OrchestrationRegistry) string {
	if r == nil {
		return "no orchestrations"
	}
	var parts []string
	for _, name := range r.Names() {
		parts = append(parts, fmt.Sprintf("%s %v (policy %s)", name, r.Versions(name), r.Policy(name)))
	}
	return strings.Join(parts, ", ")
}

// WaitRunning polls until the instance's first turn is committed (it is
// Running, or already ended) and returns what GetInstanceInfo says then.
func (e *Env) WaitRunning(ctx context.Context, id string) (client.InstanceInfo, error) {
	for {
		info, err := e.Client.GetInstanceInfo(ctx, id)
		if err == nil && (info.Status == client.StateRunning || info.Status.Ended()) && info.CurrentExecutionID > 0 {
			return info, nil
		}
		select {
		case <-ctx.Done():
			return info, fmt.Errorf("%s did not start running: %w (last error %v)", id, ctx.Err(), err)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Wait waits for the instance to complete or fail.
func (e *Env) Wait(ctx context.Context, id string) (client.Status, error) {
	st, err := e.Client.Wait(ctx, id)
	if err != nil {
		return st, fmt.Errorf("waiting for %s: %w", id, err)
	}
	return st, nil
}

// Execution is one execution of an instance as its stored history tells it.
type Execution struct {
	ID int64
	// Version is the orchestration version the execution ran
	// (OrchestrationStarted.version).
	Version string
	// Input is the execution's input: for every execution after the first,
	// what the previous one passed to continue-as-new.
	Input string
	// Status is Running, Completed, Failed or ContinuedAsNew.
	Status string
	// Output is the result, the failure, or the next execution's input.
	Output string
}

// Executions reads every stored execution of an instance, oldest first.
func (e *Env) Executions(ctx context.Context, id string) ([]Execution, error) {
	infos, err := e.Client.ListExecutions(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("listing executions of %s: %w", id, err)
	}
	var out []Execution
	for _, info := range infos {
		hist, err := e.Client.ReadHistory(ctx, id, info.ExecutionID)
		if err != nil {
			return nil, fmt.Errorf("reading execution %d of %s: %w", info.ExecutionID, id, err)
		}
		x := Execution{ID: info.ExecutionID, Status: string(info.Status), Output: info.Output}
		if len(hist) > 0 {
			x.Version, x.Input = hist[0].Version, hist[0].Input
		}
		out = append(out, x)
	}
	return out, nil
}

// Versions returns the version of each execution, oldest first.
func Versions(xs []Execution) []string {
	vs := make([]string, len(xs))
	for i, x := range xs {
		vs[i] = x.Version
	}
	return vs
}

// PrintExecutions prints one line per execution of an instance, with
// describe(x) (nil: the input) at the end, and returns the executions.
func (e *Env) PrintExecutions(ctx context.Context, id string, describe func(Execution) string) ([]Execution, error) {
	xs, err := e.Executions(ctx, id)
	if err != nil {
		return nil, err
	}
	e.Printf("%s: %d execution(s) in history", id, len(xs))
	for _, x := range xs {
		d := "input " + Shorten(x.Input, 70)
		if describe != nil {
			d = describe(x)
		}
		e.Printf("    execution %d  version %-6s %-15s %s", x.ID, x.Version, x.Status, d)
	}
	return xs, nil
}

// Shorten cuts s to at most n bytes, marking the cut.
func Shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

// syncWriter serializes writes from the scenario and the nodes' loggers.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) printf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.w, format, args...)
}

// handler is the nodes' slog handler. It prints the traces of orchestration
// code (records that start with the execution's identity) as
//
//	trace  node-b  monitor-1 e2 v1.0.1  [v1.0.1] Starting health check cycle target=db-1
//
// and, with -v or after ShowWarnings, other worker logs as well.
type handler struct {
	env   *Env
	attrs []slog.Attr
}

func (h *handler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	return &handler{env: h.env, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h *handler) WithGroup(string) slog.Handler { return h }

func (h *handler) Handle(_ context.Context, r slog.Record) error {
	known := map[string]string{}
	var rest []string
	add := func(a slog.Attr) bool {
		switch a.Key {
		case "node", "instance", "execution", "orchestration", "version":
			known[a.Key] = a.Value.String()
		case "worker": // the node id again
		default:
			rest = append(rest, a.Key+"="+a.Value.String())
		}
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	// OrchestrationContext.TraceInfo and its siblings put the execution's
	// identity first: instance, execution, orchestration, version.
	first := ""
	r.Attrs(func(a slog.Attr) bool {
		if first == "" {
			first = a.Key
		}
		return add(a)
	})
	_, isOrch := known["orchestration"]
	switch {
	case first == "instance" && isOrch:
		msg := r.Message
		if r.Level != slog.LevelInfo {
			msg = r.Level.String() + " " + msg
		}
		h.env.Printf("  trace  %s  %s e%s v%s  %s", known["node"], known["instance"], known["execution"], known["version"], join(msg, rest))
	case h.env.verbose || (r.Level >= slog.LevelWarn && h.env.warnings.Load()):
		for _, k := range []string{"instance", "execution", "orchestration", "version"} {
			if v, ok := known[k]; ok {
				rest = append(rest, k+"="+v)
			}
		}
		h.env.Printf("  %-5s  %s  %s", strings.ToLower(r.Level.String()), known["node"], join(r.Message, rest))
	}
	return nil
}

func join(msg string, attrs []string) string {
	return strings.Join(append([]string{msg}, attrs...), " ")
}
