package bench

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// RunSteady measures end-to-end latency of single-activity orchestrations:
// from the start call (or, at a fixed rate, from the moment the start was
// due) to the store's "ended" notification, which the ack that completes
// the instance publishes. One subscription serves every instance.
//
// With opts.Rate = 0 it runs opts.N orchestrations (2,000 by default) one at
// a time; otherwise it offers opts.Rate starts per second for opts.Duration
// (open loop: a start that falls behind is counted from when it was due).
func RunSteady(ctx context.Context, rdb *redis.Client, opts Options) (Result, error) {
	opts = opts.withDefaults(WorkloadSteady)
	if opts.N <= 0 {
		opts.N = 2000
	}
	r := Result{Workload: WorkloadSteady, System: SystemDuroworker}
	if opts.Rate > 0 {
		r.Params = fmt.Sprintf("rate=%g/s duration=%s", opts.Rate, opts.Duration)
	} else {
		r.Params = fmt.Sprintf("one at a time n=%d", opts.N)
	}
	e, err := newEnv(ctx, rdb, opts, orchSeq)
	if err != nil {
		return r, err
	}
	defer e.close(&r)
	if err := e.startWorkers(1); err != nil {
		return r, err
	}
	r.Settings = e.settings()
	if err := e.warmUp(orchSeq, "2"); err != nil {
		return r, err
	}

	sub := e.rdb.Subscribe(ctx, e.keys.EndedChannel())
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil { // the subscription confirmation
		return r, fmt.Errorf("subscribing to the ended channel: %w", err)
	}
	tr := newTracker()
	go tr.listen(ctx, sub)

	base, err := e.baseCounts()
	if err != nil {
		return r, err
	}
	w := e.begin()
	start := time.Now()
	var started int64
	if opts.Rate <= 0 {
		// Warm the path once more, unmeasured, then one at a time.
		for i := 0; i < opts.N+20; i++ {
			id := "st-" + strconv.Itoa(i)
			done := tr.expect(id, time.Now(), i >= 20)
			if err := e.cl.Start(ctx, id, orchSeq, "1"); err != nil {
				return r, err
			}
			started++
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				return r, errString(&r, fmt.Errorf("instance %s did not end within 30s", id))
			case <-ctx.Done():
				return r, ctx.Err()
			}
			if opts.Progress != nil {
				opts.Progress(int64(i+1), int64(opts.N+20))
			}
		}
		r.Expected = started
	} else {
		// Open loop: the schedule hands each due start to one of 8
		// goroutines, so that a slow start call does not delay the next.
		period := time.Duration(float64(time.Second) / opts.Rate)
		total := int64(opts.Duration / period)
		r.Expected = total
		jobs := make(chan string, 1024)
		var wg sync.WaitGroup
		var errOnce sync.Once
		var startErr error
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for id := range jobs {
					if err := e.cl.Start(ctx, id, orchSeq, "1"); err != nil {
						errOnce.Do(func() { startErr = err })
					}
				}
			}()
		}
		for i := int64(0); i < total && ctx.Err() == nil; i++ {
			due := start.Add(time.Duration(i) * period)
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
			id := "sr-" + strconv.FormatInt(i, 10)
			tr.expect(id, due, true)
			jobs <- id
			started++
			if opts.Progress != nil && i%50 == 0 {
				opts.Progress(tr.doneCount(), total)
			}
		}
		close(jobs)
		wg.Wait()
		if startErr != nil {
			return r, errString(&r, startErr)
		}
		if err := ctx.Err(); err != nil {
			return r, err
		}
		r.Add(MOffered, "", float64(started)/time.Since(start).Seconds())
	}
	completed, failed, err := e.waitEnded(base, started)
	r.Completed, r.Failed = completed, failed
	// The notification of the last instances may trail the counter.
	tr.waitAll(2 * time.Second)
	elapsed := tr.lastEnd().Sub(start)
	w.End(ctx, &r, started, false)
	if elapsed > 0 {
		r.Add(MAchieved, "", float64(tr.doneCount())/elapsed.Seconds())
	}
	p := Summarize(tr.latencies())
	r.AddPercentiles("", p)
	want := int(started)
	if opts.Rate <= 0 {
		want = opts.N // the first 20 are not measured
	}
	if p.N < want {
		r.Note("%d of %d latencies measured", p.N, want)
	}
	return r, errString(&r, err)
}

// tracker matches ended notifications with the instances a workload started.
type tracker struct {
	mu      sync.Mutex
	pending map[string]trackEntry
	lat     []time.Duration
	done    int64
	last    time.Time
}

type trackEntry struct {
	from    time.Time
	measure bool
	done    chan struct{}
}

func newTracker() *tracker {
	return &tracker{pending: map[string]trackEntry{}}
}

// expect registers id, measured from from; the channel is closed when id
// has ended.
func (t *tracker) expect(id string, from time.Time, measure bool) <-chan struct{} {
	ch := make(chan struct{})
	t.mu.Lock()
	t.pending[id] = trackEntry{from: from, measure: measure, done: ch}
	t.mu.Unlock()
	return ch
}

func (t *tracker) listen(ctx context.Context, sub *redis.PubSub) {
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
		t.mu.Lock()
		if e, ok := t.pending[msg.Payload]; ok {
			delete(t.pending, msg.Payload)
			if e.measure {
				t.lat = append(t.lat, now.Sub(e.from))
			}
			t.done++
			t.last = now
			close(e.done)
		}
		t.mu.Unlock()
	}
}

func (t *tracker) waitAll(d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		t.mu.Lock()
		n := len(t.pending)
		t.mu.Unlock()
		if n == 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

func (t *tracker) doneCount() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.done
}

func (t *tracker) lastEnd() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last
}

func (t *tracker) latencies() []time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]time.Duration(nil), t.lat...)
}
