package worker

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duroworker/duroworker/internal/retry"
	"github.com/duroworker/duroworker/queue"
)

// lockDeadline is the local estimate of when a lock held by this worker
// expires: set at fetch, moved on by each successful renewal.
type lockDeadline struct{ at atomic.Int64 }

func newLockDeadline(timeout time.Duration) *lockDeadline {
	l := &lockDeadline{}
	l.extend(time.Now(), timeout)
	return l
}

// extend records a successful renewal sent at from.
func (l *lockDeadline) extend(from time.Time, timeout time.Duration) {
	l.at.Store(from.Add(timeout).UnixNano())
}

func (l *lockDeadline) get() time.Time { return time.Unix(0, l.at.Load()) }

// renewLock renews a lock held until timeout every third of timeout, until
// ctx ends or the returned stop function is called: renew sends one
// renewal; each success moves deadline on (from the time it was sent). A
// failure while ctx is live goes to failed, which logs it and reports
// whether the lock is gone for good (then renewal stops; otherwise it is
// retried at the next tick). It is the one renewal loop of turns and
// activities. It runs on a timer, not a goroutine of its own: most turns
// and activities end before the first tick and so cost no goroutine.
func renewLock(ctx context.Context, timeout time.Duration, deadline *lockDeadline, renew func(context.Context) error, failed func(error) (gone bool)) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	period := timeout / 3
	var mu sync.Mutex // orders the timer's creation before its first use
	var timer *time.Timer
	tick := func() {
		if ctx.Err() != nil {
			return
		}
		sent := time.Now()
		err := renew(ctx)
		switch {
		case err == nil:
			deadline.extend(sent, timeout)
		case ctx.Err() != nil:
			return // stopped meanwhile: the failure is ours
		case failed(err):
			return
		}
		// Like a ticker: the next tick is due a period after this one,
		// at once when the renewal took longer than that.
		mu.Lock()
		defer mu.Unlock()
		if ctx.Err() == nil {
			timer.Reset(max(0, period-time.Since(sent)))
		}
	}
	mu.Lock()
	timer = time.AfterFunc(period, tick)
	mu.Unlock()
	return func() {
		cancel()
		mu.Lock()
		timer.Stop()
		mu.Unlock()
	}
}

// retryUntilLockDeadline runs op (an ack: fenced by its lock token, and
// recognised by the store when it is resent after being applied) until it
// succeeds, fails with an error that is not transient (queue.IsTransient:
// LOADING, connection refused, reset, i/o timeout...), or the lock deadline
// passes: after that, another worker may hold the lock and the ack could
// only fail. Each attempt runs with the lock deadline (at least minAckTime
// from now) as its context deadline. It returns the last error.
func (w *Worker) retryUntilLockDeadline(deadline *lockDeadline, op func(ctx context.Context) error) error {
	b := retry.New(50*time.Millisecond, time.Second)
	for tries := 1; ; tries++ {
		// An ack past the estimated deadline may still hold the lock (nobody
		// took it over yet): every attempt gets at least a few seconds.
		ctx, cancel := context.WithDeadline(context.Background(), later(deadline.get(), time.Now().Add(minAckTime)))
		err := op(ctx)
		cancel()
		if err == nil || !queue.IsTransient(err) {
			return err
		}
		wait := b.NextBackOff()
		if time.Now().Add(wait).After(deadline.get()) {
			return err
		}
		if tries == 1 {
			w.log.Warn("acknowledgement failed; retrying until the lock deadline", "err", err, "deadline", deadline.get())
		}
		time.Sleep(wait)
	}
}

// minAckTime is the shortest context deadline an ack attempt gets.
const minAckTime = 5 * time.Second

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
