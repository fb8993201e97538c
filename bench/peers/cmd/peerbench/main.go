// Command peerbench runs duroworker's benchmark workloads on peer systems,
// so that "duroworker bench --vs go-workflows,asynq" can compare them on the
// same Redis: github.com/cschleiden/go-workflows (its Redis backend) for
// drain, steady, sequential, fanout, long and timers, and
// github.com/hibiken/asynq (plain tasks) for drain and steady.
//
// It lives in its own module (bench/peers) so that duroworker's go.mod does
// not carry the peers. It prints one JSON bench.Result on stdout and a
// progress line on stderr. "peerbench -info" prints the peers' versions and
// the settings used.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/bench"
)

// config is the workload as the duroworker CLI passes it.
type config struct {
	system      string
	workload    string
	caseName    string
	n, k        int
	rate        float64
	duration    time.Duration
	delay       time.Duration
	retry       bool
	concurrency int
	poll        time.Duration
	timeout     time.Duration
}

// poolSize is the connection pool of every peer's Redis client: the same
// as duroworker's worker gets with its default concurrency (8 + 16 + 8).
const poolSize = 32

func main() {
	var cfg config
	var redisURL string
	var info bool
	flag.BoolVar(&info, "info", false, "print the peers' versions and settings as JSON and exit")
	flag.StringVar(&redisURL, "redis", "redis://127.0.0.1:6379/0", "Redis URL; the database must be empty (the caller flushes it)")
	flag.StringVar(&cfg.system, "system", bench.SystemGoWorkflows, "go-workflows or asynq")
	flag.StringVar(&cfg.workload, "workload", bench.WorkloadDrain, "drain, steady, sequential, fanout, long or timers")
	flag.StringVar(&cfg.caseName, "case", "", "case name to put in the result")
	flag.IntVar(&cfg.n, "n", 0, "orchestrations (workflows, tasks)")
	flag.IntVar(&cfg.k, "k", 0, "activities per workflow")
	flag.Float64Var(&cfg.rate, "rate", 0, "steady: offered starts per second (0: one at a time)")
	flag.DurationVar(&cfg.duration, "duration", 10*time.Second, "steady: how long to offer -rate")
	flag.DurationVar(&cfg.delay, "delay", time.Second, "timers: sleep")
	flag.BoolVar(&cfg.retry, "retry", false, "fanout: retry policy on every activity")
	flag.IntVar(&cfg.concurrency, "concurrency", 0, "worker concurrency (0: see -info)")
	flag.DurationVar(&cfg.poll, "poll", 2*time.Millisecond, "how often completion is polled")
	flag.DurationVar(&cfg.timeout, "timeout", 10*time.Minute, "give up after this long")
	flag.Parse()

	if info {
		out, _ := json.Marshal(map[string]any{"versions": versions(), "settings": map[string]string{
			bench.SystemGoWorkflows: goWorkflowsSettings(0),
			bench.SystemAsynq:       asynqSettings(0),
		}})
		fmt.Println(string(out))
		return
	}
	cfg.defaults()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		fail(cfg, fmt.Errorf("-redis: %w", err))
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		fail(cfg, err)
	}

	var res bench.Result
	switch cfg.system {
	case bench.SystemGoWorkflows:
		res, err = runGoWorkflows(ctx, rdb, cfg)
	case bench.SystemAsynq:
		res, err = runAsynq(ctx, rdb, cfg)
	default:
		err = fmt.Errorf("unknown -system %q", cfg.system)
	}
	res.System, res.Workload, res.Case = cfg.system, cfg.workload, cfg.caseName
	if err != nil && res.Error == "" {
		res.Error = err.Error()
	}
	if res.Error == "" && res.Failed > 0 {
		res.Error = fmt.Sprintf("%d failed", res.Failed)
	}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
	if res.Error != "" {
		os.Exit(1)
	}
}

func (c *config) defaults() {
	switch c.workload {
	case bench.WorkloadDrain:
		if c.n <= 0 {
			c.n = 2000
		}
		c.k = max(c.k, 1)
	case bench.WorkloadSteady:
		if c.n <= 0 {
			c.n = 2000
		}
	case bench.WorkloadSequential:
		c.n, c.k = max(c.n, 1), orDefault(c.k, 200)
	case bench.WorkloadLong:
		c.n, c.k = max(c.n, 1), orDefault(c.k, 1000)
	case bench.WorkloadFanout:
		c.n, c.k = max(c.n, 1), orDefault(c.k, 1000)
	case bench.WorkloadTimers:
		c.n = orDefault(c.n, 1000)
	}
	if c.duration <= 0 {
		c.duration = 10 * time.Second
	}
	if c.delay <= 0 {
		c.delay = time.Second
	}
	if c.poll <= 0 {
		c.poll = 2 * time.Millisecond
	}
	if c.timeout <= 0 {
		c.timeout = 10 * time.Minute
	}
}

func orDefault(v, d int) int {
	if v <= 0 {
		return d
	}
	return v
}

func fail(cfg config, err error) {
	out, _ := json.Marshal(bench.Result{System: cfg.system, Workload: cfg.workload, Case: cfg.caseName, Error: err.Error()})
	fmt.Println(string(out))
	os.Exit(1)
}

// versions reports the module versions of the peers built into this binary.
func versions() map[string]string {
	out := map[string]string{}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return out
	}
	for _, d := range bi.Deps {
		switch d.Path {
		case "github.com/cschleiden/go-workflows":
			out[bench.SystemGoWorkflows] = d.Version
		case "github.com/hibiken/asynq":
			out[bench.SystemAsynq] = d.Version
		case "github.com/redis/go-redis/v9":
			out["go-redis"] = d.Version
		}
	}
	return out
}

// params describes the workload for the result.
func (c config) params() string {
	switch c.workload {
	case bench.WorkloadSteady:
		if c.rate > 0 {
			return fmt.Sprintf("rate=%g/s duration=%s", c.rate, c.duration)
		}
		return fmt.Sprintf("one at a time n=%d", c.n)
	case bench.WorkloadTimers:
		return fmt.Sprintf("n=%d delay=%s", c.n, c.delay)
	case bench.WorkloadFanout:
		if c.retry {
			return fmt.Sprintf("n=%d k=%d retry", c.n, c.k)
		}
	}
	return fmt.Sprintf("n=%d k=%d", c.n, c.k)
}

// counter counts the bench's own polls.
type counter struct {
	mu sync.Mutex
	n  int64
}

func (c *counter) add(d int64) {
	c.mu.Lock()
	c.n += d
	c.mu.Unlock()
}

func (c *counter) get() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func begin(ctx context.Context, rdb *redis.Client, rt *bench.RoundTrips, polls *counter) *bench.Window {
	return bench.BeginWindow(ctx, rdb, polls.get, rt)
}

// progress prints a single-line progress bar on stderr when it is a
// terminal.
type progress struct {
	label string
	start time.Time
	last  time.Time
	tty   bool
	mu    sync.Mutex
}

func newProgress(label string) *progress {
	st, err := os.Stderr.Stat()
	return &progress{label: label, start: time.Now(), tty: err == nil && st.Mode()&os.ModeCharDevice != 0}
}

func (p *progress) update(done, total int64) {
	if !p.tty {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.last) < 100*time.Millisecond && done < total {
		return
	}
	p.last = time.Now()
	const width = 30
	filled := 0
	if total > 0 {
		filled = int(min(width, done*width/total))
	}
	fmt.Fprintf(os.Stderr, "\r\033[K    %s [%s%s] %d/%d %.1fs", p.label, strings.Repeat("=", filled), strings.Repeat(" ", width-filled),
		done, total, time.Since(p.start).Seconds())
}

func (p *progress) done() {
	if p.tty {
		fmt.Fprint(os.Stderr, "\r\033[K")
	}
}

// waitFor polls count until it reaches target, reporting progress, or the
// timeout passes.
func waitFor(ctx context.Context, cfg config, p *progress, target int64, count func() (int64, error)) (int64, error) {
	deadline := time.Now().Add(cfg.timeout)
	t := time.NewTicker(cfg.poll)
	defer t.Stop()
	for {
		n, err := count()
		if err != nil {
			return n, err
		}
		p.update(n, target)
		if n >= target {
			return n, nil
		}
		if time.Now().After(deadline) {
			return n, fmt.Errorf("timed out after %s: %d of %d ended", cfg.timeout, n, target)
		}
		select {
		case <-ctx.Done():
			return n, ctx.Err()
		case <-t.C:
		}
	}
}

// latencies collects end-to-end latencies keyed by instance or task id.
type latencies struct {
	mu      sync.Mutex
	from    map[string]time.Time
	measure map[string]bool
	done    map[string]chan struct{}
	lat     []time.Duration
	ended   int64
	last    time.Time
}

func newLatencies() *latencies {
	return &latencies{from: map[string]time.Time{}, measure: map[string]bool{}, done: map[string]chan struct{}{}}
}

func (l *latencies) expect(id string, from time.Time, measure bool) <-chan struct{} {
	ch := make(chan struct{})
	l.mu.Lock()
	l.from[id], l.measure[id], l.done[id] = from, measure, ch
	l.mu.Unlock()
	return ch
}

// end records that id ended now (once).
func (l *latencies) end(id string) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	from, ok := l.from[id]
	if !ok {
		return
	}
	delete(l.from, id)
	if l.measure[id] {
		l.lat = append(l.lat, now.Sub(from))
	}
	l.ended++
	l.last = now
	close(l.done[id])
	delete(l.done, id)
}

func (l *latencies) count() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ended
}

func (l *latencies) snapshot() ([]time.Duration, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Duration(nil), l.lat...), l.last
}

// steadyDriver runs the steady workload's start schedule with start as
// the way to start one instance: one at a time (rate 0) or open loop at
// cfg.rate from a few goroutines, each latency counted from when its start
// was due.
func steadyDriver(ctx context.Context, cfg config, r *bench.Result, p *progress, lat *latencies, start func(id string) error) (started int64, err error) {
	if cfg.rate <= 0 {
		for i := 0; i < cfg.n+20; i++ {
			id := fmt.Sprintf("st-%d", i)
			done := lat.expect(id, time.Now(), i >= 20)
			if err := start(id); err != nil {
				return started, err
			}
			started++
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				return started, fmt.Errorf("instance %s did not end within 30s", id)
			case <-ctx.Done():
				return started, ctx.Err()
			}
			p.update(int64(i+1), int64(cfg.n+20))
		}
		return started, nil
	}
	period := time.Duration(float64(time.Second) / cfg.rate)
	total := int64(cfg.duration / period)
	type job struct {
		id string
	}
	jobs := make(chan job, 1024)
	var wg sync.WaitGroup
	var errOnce sync.Once
	var firstErr error
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if err := start(j.id); err != nil {
					errOnce.Do(func() { firstErr = err })
				}
			}
		}()
	}
	t0 := time.Now()
	for i := int64(0); i < total && ctx.Err() == nil; i++ {
		due := t0.Add(time.Duration(i) * period)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		id := fmt.Sprintf("sr-%d", i)
		lat.expect(id, due, true)
		jobs <- job{id: id}
		started++
		if i%50 == 0 {
			p.update(lat.count(), total)
		}
	}
	close(jobs)
	wg.Wait()
	r.Add(bench.MOffered, "", float64(started)/time.Since(t0).Seconds())
	return started, firstErr
}

// steadyResult adds the latency percentiles and the achieved rate.
func steadyResult(r *bench.Result, lat *latencies, t0 time.Time) {
	l, last := lat.snapshot()
	if el := last.Sub(t0); el > 0 {
		r.Add(bench.MAchieved, "", float64(lat.count())/el.Seconds())
	}
	r.AddPercentiles("", bench.Summarize(l))
}
