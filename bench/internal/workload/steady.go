package workload

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/bench/internal/measure"
	"github.com/duroworker/duroworker/bench/internal/result"
)

// runSteady measures end-to-end latency of single-activity orchestrations:
// from the start call (or, at a fixed rate, from the moment the start was
// due) to the store's "ended" notification, which the ack that completes
// the instance publishes. One subscription serves every instance. With
// opts.EndAtWait the end is instead when client.Wait, called right after
// the start returned, returns (what a caller sees).
//
// With opts.Rate = 0 it runs opts.N orchestrations (2,000 by default) one at
// a time; otherwise it offers opts.Rate starts per second for opts.Duration
// (open loop: a start that falls behind is counted from when it was due).
func runSteady(ctx context.Context, rdb *redis.Client, opts Options) (result.Result, error) {
	opts = opts.withDefaults(result.WorkloadSteady, 2000, 0)
	r := result.Result{Workload: result.WorkloadSteady, System: result.SystemDuroworker}
	if opts.Rate > 0 {
		r.Params = fmt.Sprintf("rate=%g/s duration=%s", opts.Rate, opts.Duration)
	} else {
		r.Params = fmt.Sprintf("one at a time n=%d", opts.N)
	}
	if opts.EndAtWait {
		r.Params += " end=wait"
	}
	e, err := openEnv(ctx, rdb, opts, &r, 1, orchSeq)
	if err != nil {
		return r, err
	}
	defer e.close(&r)
	base, err := e.warmUp(orchSeq, "2")
	if err != nil {
		return r, err
	}

	tr := measure.NewTracker()
	start := func(id string) error { return e.cl.Start(ctx, id, orchSeq, "1") }
	var waitErrs atomic.Int64
	if opts.EndAtWait {
		start = func(id string) error {
			if err := e.cl.Start(ctx, id, orchSeq, "1"); err != nil {
				return err
			}
			go func() {
				if _, err := e.cl.Wait(ctx, id); err != nil {
					waitErrs.Add(1)
					return
				}
				tr.End(id, time.Now())
			}()
			return nil
		}
	} else {
		sub := e.rdb.Subscribe(ctx, e.keys.EndedChannel())
		defer sub.Close()
		if _, err := sub.Receive(ctx); err != nil { // the subscription confirmation
			return r, fmt.Errorf("subscribing to the ended channel: %w", err)
		}
		go listenEnded(ctx, sub, tr)
	}

	w := e.begin()
	t0 := time.Now()
	schedule := measure.Schedule{N: opts.N, Rate: opts.Rate, Duration: opts.Duration}
	started, err := schedule.Run(ctx, tr, &r, opts.Progress, start)
	r.Expected = started
	if err != nil {
		return r, errString(&r, err)
	}
	completed, failed, err := e.waitEnded(base, started)
	r.Completed, r.Failed = completed, failed
	// The notification of the last instances may trail the counter.
	tr.WaitAll(ctx, 2*time.Second)
	w.End(ctx, &r, started, false)
	p := tr.AddTo(&r, t0)
	if n := waitErrs.Load(); n > 0 {
		r.Note("%d client.Wait calls failed", n)
	}
	want := int(started)
	if opts.Rate <= 0 {
		want = opts.N // the first 20 are not measured
	}
	if p.N < want {
		r.Note("%d of %d latencies measured", p.N, want)
	}
	return r, errString(&r, err)
}

// listenEnded ends, in tr, the instances whose ended notification arrives
// on sub, until ctx ends or sub is closed.
func listenEnded(ctx context.Context, sub *redis.PubSub, tr *measure.Tracker) {
	for {
		msg, err := sub.ReceiveMessage(ctx)
		now := time.Now()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if sub.Ping(ctx) != nil { // closed
				return
			}
			continue
		}
		tr.End(msg.Payload, now)
	}
}
