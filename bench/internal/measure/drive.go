package measure

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duroworker/duroworker/bench/internal/result"
)

// StartMany calls start with the indexes 0 to n-1 from concurrency
// goroutines and returns the first error; a goroutine stops at its first.
func StartMany(n, concurrency int, start func(i int64) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for g := 0; g < concurrency; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				if err := start(i); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// WaitFor calls count every poll until it reaches target, reporting
// progress (when not nil), and returns the last count. It fails when count
// fails, when timeout passes or when ctx ends.
func WaitFor(ctx context.Context, poll, timeout time.Duration, target int64, progress func(done, total int64), count func() (int64, error)) (int64, error) {
	deadline := time.Now().Add(timeout)
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		n, err := count()
		if err != nil {
			return n, err
		}
		if progress != nil {
			progress(n, target)
		}
		if n >= target {
			return n, nil
		}
		if time.Now().After(deadline) {
			return n, fmt.Errorf("timed out after %s: %d of %d ended", timeout, n, target)
		}
		select {
		case <-ctx.Done():
			return n, ctx.Err()
		case <-t.C:
		}
	}
}

// Schedule is how the steady workload offers starts.
type Schedule struct {
	// N is the number of starts one at a time (Rate 0).
	N int
	// Rate is the offered starts per second; 0 starts one at a time.
	Rate float64
	// Duration is how long Rate is offered.
	Duration time.Duration
}

// Run starts instances through start and registers each with tr, and
// returns how many it started. With Rate 0 it starts N+20 one at a time,
// each once the previous one ended (within 30 s); the first 20 warm the
// path and are not measured. Otherwise it runs an open loop: Rate starts
// per second for Duration, handed to 8 goroutines so that a slow start does
// not delay the next, each latency counted from when its start was due; the
// offered rate is added to r. progress, when not nil, gets what is done out
// of the total.
func (s Schedule) Run(ctx context.Context, tr *Tracker, r *result.Result, progress func(done, total int64), start func(id string) error) (started int64, err error) {
	report := func(done, total int64) {
		if progress != nil {
			progress(done, total)
		}
	}
	if s.Rate <= 0 {
		for i := 0; i < s.N+20; i++ {
			id := "st-" + strconv.Itoa(i)
			done := tr.Expect(id, time.Now(), i >= 20)
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
			report(int64(i+1), int64(s.N+20))
		}
		return started, nil
	}
	period := time.Duration(float64(time.Second) / s.Rate)
	total := int64(s.Duration / period)
	jobs := make(chan string, 1024)
	var wg sync.WaitGroup
	var errOnce sync.Once
	var startErr error
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range jobs {
				if err := start(id); err != nil {
					errOnce.Do(func() { startErr = err })
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
		id := "sr-" + strconv.FormatInt(i, 10)
		tr.Expect(id, due, true)
		jobs <- id
		started++
		if i%50 == 0 {
			report(tr.Done(), total)
		}
	}
	close(jobs)
	wg.Wait()
	if startErr != nil {
		return started, startErr
	}
	if err := ctx.Err(); err != nil {
		return started, err
	}
	r.Add(result.MOffered, "", float64(started)/time.Since(t0).Seconds())
	return started, nil
}
