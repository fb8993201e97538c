package workload

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/bench/internal/measure"
	"github.com/duroworker/duroworker/bench/internal/result"
)

// runBacklog starts N single-activity orchestrations on a running worker
// as fast as StartConcurrency goroutines can, so that starts pile up far
// ahead of the worker, and measures what a caller of each start sees: the
// time from the first start to the first completion, and each instance's
// end-to-end latency from its start call to its ended notification
// (p50..max). It notes the started and completed counts once a second, which
// show whether running work is served ahead of new starts.
func runBacklog(ctx context.Context, rdb *redis.Client, opts Options) (result.Result, error) {
	opts = opts.withDefaults(result.WorkloadBacklog, 100_000, 1)
	r := result.Result{Workload: result.WorkloadBacklog, System: result.SystemDuroworker, Params: fmt.Sprintf("n=%d k=1", opts.N), Expected: int64(opts.N)}
	e, err := openEnv(ctx, rdb, opts, &r, 1, orchSeq)
	if err != nil {
		return r, err
	}
	defer e.close(&r)
	base, err := e.warmUp(orchSeq, "1")
	if err != nil {
		return r, err
	}
	sub := e.rdb.Subscribe(ctx, e.keys.EndedChannel())
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		return r, fmt.Errorf("subscribing to the ended channel: %w", err)
	}
	tr := measure.NewTracker()
	go listenEnded(ctx, sub, tr)

	var started atomic.Int64
	samples := make(chan string, 1)
	sctx, stopSampling := context.WithCancel(ctx)
	t0 := time.Now()
	go func() { samples <- e.sampleBacklog(sctx, t0, base, &started) }()
	w := e.begin()
	err = measure.StartMany(opts.N, opts.StartConcurrency, func(i int64) error {
		id := "b-" + strconv.FormatInt(i, 10)
		tr.Expect(id, time.Now(), true)
		if err := e.cl.Start(e.ctx, id, orchSeq, "1"); err != nil {
			return err
		}
		started.Add(1)
		return nil
	})
	allStarted := time.Since(t0)
	if err != nil {
		stopSampling()
		<-samples
		return r, err
	}
	r.Completed, r.Failed, err = e.waitEnded(base, int64(opts.N))
	elapsed := time.Since(t0)
	tr.WaitAll(ctx, 2*time.Second)
	stopSampling()
	w.End(ctx, &r, int64(opts.N), false)
	r.AddThroughput(elapsed, r.Completed, e.activities.Load())
	r.AddDuration(result.MStartAll, allStarted)
	if first := tr.First(); !first.IsZero() {
		r.AddDuration(result.MFirstEnd, first.Sub(t0))
	}
	if p := tr.AddTo(&r, t0); p.N < opts.N {
		r.Note("%d of %d latencies measured", p.N, opts.N)
	}
	if s := <-samples; s != "" {
		r.Note("started/completed by second: %s", s)
	}
	return r, errString(&r, err)
}

// sampleBacklog reads the completed counter once a second until ctx ends
// and returns "1s 5000/800, 2s ..." (at most 40 samples: later ones are
// thinned to every other).
func (e *env) sampleBacklog(ctx context.Context, t0 time.Time, base counts, started *atomic.Int64) string {
	type sample struct {
		at                 time.Duration
		started, completed int64
	}
	var ss []sample
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			var parts []string
			step := 1
			for len(ss)/step > 40 {
				step *= 2
			}
			for i := step - 1; i < len(ss); i += step {
				parts = append(parts, fmt.Sprintf("%s %d/%d", ss[i].at.Round(time.Second), ss[i].started, ss[i].completed))
			}
			return strings.Join(parts, ", ")
		case <-tick.C:
			c, _, err := e.counts()
			if err == nil {
				ss = append(ss, sample{time.Since(t0), started.Load(), c - base.completed})
			}
		}
	}
}
