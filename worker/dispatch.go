package worker

import (
	"context"
	"time"
)

// dispatcher describes one fetch loop: orchestration turns or activities.
type dispatcher[T any] struct {
	what        string
	concurrency int
	kick        chan struct{} // wakes an idle loop
	reconnect   chan struct{} // the wake-up subscription reconnected: ends an error backoff
	minIdle     time.Duration // shortest wait after an empty fetch
	before      func()        // runs before each fetch, if set
	fetch       func(n int) (items []T, nextWake time.Duration, err error)
	run         func(T)
}

// dispatch runs d until ctx ends: it waits for a free slot, fetches as many
// items as there are free slots, runs each on its own goroutine, backs off
// on store errors (100 ms doubling to 5 s, cut short when the wake-up
// subscription reconnects: Redis is reachable again), and after a fetch that
// did not fill its slots blocks until kicked, until the earliest known due
// item, or for BlockTimeout.
func dispatch[T any](ctx context.Context, w *Worker, d dispatcher[T]) {
	slots := make(chan struct{}, d.concurrency)
	errs := 0
	for ctx.Err() == nil {
		if d.before != nil {
			d.before()
		}
		// Wait for one free slot, then take every other free one.
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		n := 1
		for n < cap(slots) {
			select {
			case slots <- struct{}{}:
				n++
				continue
			default:
			}
			break
		}
		items, nextWake, err := d.fetch(n)
		for i := len(items); i < n; i++ {
			<-slots
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			errs++
			if errs == 1 || errs%50 == 0 {
				w.log.Error("fetching "+d.what+" failed; retrying", "err", err, "consecutive_errors", errs)
			}
			idleWait(ctx, d.reconnect, errorBackoff(errs))
			continue
		}
		select { // a reconnect seen while fetching normally is stale
		case <-d.reconnect:
		default:
		}
		if errs > 0 {
			w.log.Info("store reachable again", "after_errors", errs)
			errs = 0
		}
		for _, item := range items {
			w.inflight.Add(1)
			go func(item T) {
				defer w.inflight.Done()
				defer func() { <-slots }()
				d.run(item)
			}(item)
		}
		if len(items) < n {
			// The fetch did not fill the free slots: there is nothing more
			// to take now. Wait for a wake-up (new work publishes one, and
			// a wake-up that arrived meanwhile is buffered in d.kick), the
			// earliest delayed item, or BlockTimeout, instead of fetching
			// again at once and coming back empty.
			wait := w.opts.BlockTimeout
			if nextWake > 0 && nextWake < wait {
				wait = nextWake
			}
			if len(items) == 0 {
				wait = max(wait, d.minIdle)
			}
			idleWait(ctx, d.kick, wait)
		}
	}
}
