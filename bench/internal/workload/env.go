package workload

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/bench/internal/measure"
	"github.com/duroworker/duroworker/bench/internal/result"

	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/queue"
	"github.com/duroworker/duroworker/worker"
)

// Options configure a duroworker workload. Zero values select each
// workload's documented default.
type Options struct {
	// N is the number of orchestrations (samples for the one-at-a-time
	// steady workload).
	N int
	// K is the number of activities per orchestration.
	K int
	// OrchestrationConcurrency and ActivityConcurrency configure the
	// worker; zero keeps the worker defaults (8 and 16).
	OrchestrationConcurrency int
	ActivityConcurrency      int
	// StartConcurrency is how many goroutines start orchestrations in
	// workloads that start many at once. If zero, 16.
	StartConcurrency int
	// Rate is the offered start rate of the steady workload (starts per
	// second); zero runs one orchestration at a time.
	Rate float64
	// Duration is how long the steady workload offers starts, or how long
	// the idle workload measures. If zero, 10 seconds.
	Duration time.Duration
	// Delay is the timer of the timers workload. If zero, 1 second.
	Delay time.Duration
	// Workers is the number of workers of the sessions workload. If zero, 3.
	Workers int
	// RegisterAll makes the workers register every orchestration of the
	// bench instead of only the workload's: each registered orchestration
	// name adds ready buckets that every fetch reads.
	RegisterAll bool
	// Retry makes the fanout workload use a retry policy on every activity.
	Retry bool
	// EndAtWait makes drain and steady observe completion as a caller of
	// the client does: steady's latency ends when client.Wait returns for
	// the instance, drain ends when client.WaitMany has yielded every
	// instance. Otherwise steady ends at the store's ended notification and
	// drain at the stats counter.
	EndAtWait bool
	// FailEvery makes every FailEvery-th activity of the fanout workload
	// fail its first attempt (with Retry, the policy retries it). Zero: none.
	FailEvery int
	// Prefix is the key namespace. If empty, "bench-<workload>".
	Prefix string
	// Poll is how often completion is polled. If zero, 2 ms.
	Poll time.Duration
	// Timeout bounds the wait for completion. If zero, 10 minutes.
	Timeout time.Duration
	// Progress, when not nil, is called with what is done out of total.
	Progress func(done, total int64)
	// Logger receives the worker's logs. If nil, warnings and errors are
	// counted and the first few are added to the result's notes.
	Logger *slog.Logger
}

// withDefaults fills in the documented defaults, with n and k the
// workload's for N and K (0: none).
func (o Options) withDefaults(workload string, n, k int) Options {
	if o.N <= 0 {
		o.N = n
	}
	if o.K <= 0 {
		o.K = k
	}
	if o.StartConcurrency <= 0 {
		o.StartConcurrency = 16
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.Delay <= 0 {
		o.Delay = time.Second
	}
	if o.Workers <= 0 {
		o.Workers = 3
	}
	if o.Prefix == "" {
		o.Prefix = "bench-" + strings.ReplaceAll(workload, " ", "-")
	}
	if o.Poll <= 0 {
		o.Poll = 2 * time.Millisecond
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Minute
	}
	return o
}

// Names of what the workloads register.
const (
	orchSeq     = "bench::seq"
	orchFanout  = "bench::fanout"
	orchTimer   = "bench::timer"
	orchSession = "bench::session"
	orchHold    = "bench::hold"
	actNoop     = "bench::noop"
	actSession  = "bench::session-activity"
)

// env is one duroworker setup: workers and a client on their own counted
// Redis clients, and the bench's client for polls and INFO.
type env struct {
	ctx   context.Context
	rdb   *redis.Client // the bench's: polls, INFO, pub/sub
	opts  Options
	keys  queue.Keys
	store *queue.Store // the workers'
	wrdb  *redis.Client
	wrt   *measure.RoundTrips
	crdb  *redis.Client
	crt   *measure.RoundTrips
	cl    *client.Client
	orchs *engine.OrchestrationRegistry
	acts  *engine.ActivityRegistry

	workers    []*worker.Worker
	logs       *logCounter
	registered int // orchestration names registered

	activities atomic.Int64
	polls      atomic.Int64
	warming    atomic.Bool // warm-up: no failures injected

	// steps[i] is when step i of a single sequential orchestration ran
	// (UnixNano); empty unless that is measured.
	steps []atomic.Int64

	lateness measure.Lateness // timers

	mu         sync.Mutex
	sessions   map[string]map[string]bool // session -> workers that ran it
	failedOnce sync.Map                   // "instance/input" of activities whose first attempt failed (FailEvery)
}

// newEnv prepares workers that register the given orchestrations (all of
// the bench's with opts.RegisterAll) and the activities they use.
func newEnv(ctx context.Context, rdb *redis.Client, opts Options, orchestrations ...string) (*env, error) {
	oc, ac := opts.OrchestrationConcurrency, opts.ActivityConcurrency
	if oc == 0 {
		oc = worker.DefaultOrchestrationConcurrency
	}
	if ac == 0 {
		ac = worker.DefaultActivityConcurrency
	}
	e := &env{ctx: ctx, rdb: rdb, opts: opts, keys: queue.NewKeys(opts.Prefix),
		sessions: map[string]map[string]bool{}}
	e.wrdb, e.wrt = measure.CountedClient(rdb, max(oc, 0)+max(ac, 0)+8)
	e.crdb, e.crt = measure.CountedClient(rdb, opts.StartConcurrency+4)
	e.store = queue.New(e.wrdb, queue.Options{Prefix: opts.Prefix})
	e.cl = client.New(queue.New(e.crdb, queue.Options{Prefix: opts.Prefix}))
	e.logs = &logCounter{}
	fns := map[string]engine.OrchestrationFunc{
		orchSeq: e.seqOrchestration, orchFanout: e.fanoutOrchestration, orchTimer: e.timerOrchestration,
		orchSession: e.sessionOrchestration, orchHold: e.holdOrchestration,
	}
	if opts.RegisterAll {
		orchestrations = []string{orchSeq, orchFanout, orchTimer, orchSession, orchHold}
	}
	ob := engine.NewOrchestrationRegistry()
	ab := engine.NewActivityRegistry()
	for _, name := range orchestrations {
		ob.Register(name, fns[name])
		if name == orchSession {
			ab.Register(actSession, e.sessionActivity)
		}
	}
	ab.Register(actNoop, e.noopActivity)
	e.registered = len(orchestrations)
	var err error
	if e.orchs, err = ob.Build(); err != nil {
		return nil, err
	}
	if e.acts, err = ab.Build(); err != nil {
		return nil, err
	}
	return e, nil
}

// openEnv is newEnv with n workers started (start). On failure it closes
// what it opened; otherwise the caller closes the env.
func openEnv(ctx context.Context, rdb *redis.Client, opts Options, r *result.Result, n int, orchestrations ...string) (*env, error) {
	e, err := newEnv(ctx, rdb, opts, orchestrations...)
	if err != nil {
		return nil, err
	}
	if err := e.start(r, n); err != nil {
		e.close(r)
		return nil, err
	}
	return e, nil
}

// start starts n workers with the options' concurrency and records the
// settings in effect on r.
func (e *env) start(r *result.Result, n int) error {
	if err := e.startWorkers(n); err != nil {
		return err
	}
	r.Settings = e.settings()
	return nil
}

// startWorkers starts n workers with the options' concurrency.
func (e *env) startWorkers(n int) error {
	for i := 0; i < n; i++ {
		logger := e.opts.Logger
		if logger == nil {
			logger = slog.New(e.logs)
		}
		w, err := worker.New(e.store, e.orchs, e.acts, worker.Options{
			NodeID:                   fmt.Sprintf("bench-%s-w%d", strings.TrimPrefix(e.opts.Prefix, "bench-"), i+1),
			OrchestrationConcurrency: e.opts.OrchestrationConcurrency,
			ActivityConcurrency:      e.opts.ActivityConcurrency,
			Logger:                   logger,
		})
		if err != nil {
			return err
		}
		if err := w.Start(e.ctx); err != nil {
			return err
		}
		e.workers = append(e.workers, w)
	}
	return nil
}

// settings describes the worker configuration in effect.
func (e *env) settings() string {
	if len(e.workers) == 0 {
		return ""
	}
	o := e.workers[0].Options()
	s := fmt.Sprintf("workers=%d orch_concurrency=%d act_concurrency=%d block_timeout=%s replay_cache=%d redis_pool=%d registered_orchestrations=%d",
		len(e.workers), o.OrchestrationConcurrency, o.ActivityConcurrency, o.BlockTimeout, o.ReplayCacheSize, e.wrdb.Options().PoolSize, e.registered)
	return s
}

// close shuts the workers down and closes the clients.
func (e *env) close(r *result.Result) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for _, w := range e.workers {
		_ = w.Shutdown(ctx)
	}
	_ = e.cl.Close()
	_ = e.crdb.Close()
	_ = e.wrdb.Close()
	if r != nil {
		if n := e.logs.count.Load(); n > 0 {
			r.Note("worker logged %d warnings/errors; first: %s", n, e.logs.firstMessages())
		}
	}
}

// counts is a snapshot of the namespace's ended instances.
type counts struct{ completed, failed int64 }

// baseCounts reads the counters before a measured phase.
func (e *env) baseCounts() (counts, error) {
	c, f, err := e.counts()
	return counts{c, f}, err
}

// counts reads the completed and failed counters of the namespace: one
// HMGET, the "one counter" way of counting completion.
func (e *env) counts() (completed, failed int64, err error) {
	e.polls.Add(1)
	v, err := e.rdb.HMGet(e.ctx, e.keys.StatsKey(), "completed", "failed").Result()
	if err != nil {
		return 0, 0, err
	}
	num := func(x any) int64 {
		s, _ := x.(string)
		n, _ := strconv.ParseInt(s, 10, 64)
		return n
	}
	return num(v[0]), num(v[1]), nil
}

// waitEnded polls the counters until completed+failed, less what they were
// at base (from baseCounts), reaches target, reporting progress, or the
// timeout passes.
func (e *env) waitEnded(base counts, target int64) (completed, failed int64, err error) {
	_, err = measure.WaitFor(e.ctx, e.opts.Poll, e.opts.Timeout, target, e.opts.Progress, func() (int64, error) {
		c, f, err := e.counts()
		completed, failed = c-base.completed, f-base.failed
		return completed + failed, err
	})
	return completed, failed, err
}

// waitMany waits with the client's WaitMany for the n instances prefix-0..
// to end, as a caller of the client would, reporting progress, until the
// timeout passes.
func (e *env) waitMany(prefix string, n int) (completed, failed int64, err error) {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = prefix + strconv.Itoa(i)
	}
	ctx, cancel := context.WithTimeout(e.ctx, e.opts.Timeout)
	defer cancel()
	for st, werr := range e.cl.WaitMany(ctx, ids) {
		if werr != nil {
			return completed, failed, fmt.Errorf("client.WaitMany: %w (%d of %d ended)", werr, completed+failed, n)
		}
		if st.State == client.StateCompleted {
			completed++
		} else {
			failed++
		}
		if e.opts.Progress != nil && (completed+failed)%64 == 0 {
			e.opts.Progress(completed+failed, int64(n))
		}
	}
	return completed, failed, nil
}

// startMany starts n instances of name with input, ids prefix-0.., from
// StartConcurrency goroutines.
func (e *env) startMany(prefix string, n int, name, input string) error {
	return measure.StartMany(n, e.opts.StartConcurrency, func(i int64) error {
		return e.cl.Start(e.ctx, prefix+strconv.FormatInt(i, 10), name, input)
	})
}

// warmUp runs a few orchestrations of name with input, so that scripts are
// loaded and connections open before the measured phase, then clears what
// the activities recorded and returns the counters to measure from.
func (e *env) warmUp(name, input string) (counts, error) {
	base, err := e.baseCounts()
	if err != nil {
		return base, err
	}
	progress := e.opts.Progress
	e.opts.Progress = nil
	e.warming.Store(true)
	err = e.startMany("warm-", 8, name, input)
	if err == nil {
		_, _, err = e.waitEnded(base, 8)
	}
	e.opts.Progress = progress
	e.warming.Store(false)
	if err != nil {
		return base, err
	}
	e.activities.Store(0)
	for i := range e.steps {
		e.steps[i].Store(0)
	}
	return e.baseCounts()
}

// phase is the measured phase of most workloads: it starts opts.N
// instances of name with input and waits until they ended (counted from
// base), and records on r the counts, the window's measures and the
// throughput. It returns how long the instances took.
func (e *env) phase(r *result.Result, idPrefix, name, input string, base counts) (time.Duration, error) {
	n := int64(e.opts.N)
	w := e.begin()
	start := time.Now()
	if err := e.startMany(idPrefix, e.opts.N, name, input); err != nil {
		return 0, err
	}
	var err error
	r.Completed, r.Failed, err = e.waitEnded(base, n)
	elapsed := time.Since(start)
	w.End(e.ctx, r, n, false)
	r.AddThroughput(elapsed, r.Completed, e.activities.Load())
	return elapsed, err
}

// begin starts measuring a phase: the workers' and the client's round
// trips, less the bench's own polls.
func (e *env) begin() *measure.Window {
	return measure.BeginWindow(e.ctx, e.rdb, e.polls.Load, e.wrt, e.crt)
}

// logCounter is a slog handler that counts warnings and errors and keeps
// the first few.
type logCounter struct {
	count atomic.Int64
	mu    sync.Mutex
	first []string
}

func (h *logCounter) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h *logCounter) Handle(_ context.Context, r slog.Record) error {
	h.count.Add(1)
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.first) < 3 {
		msg := r.Message
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "err" {
				msg += ": " + a.Value.String()
			}
			return true
		})
		h.first = append(h.first, msg)
	}
	return nil
}

func (h *logCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logCounter) WithGroup(string) slog.Handler      { return h }

func (h *logCounter) firstMessages() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(h.first, "; ")
}
