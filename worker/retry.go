package worker

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"

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
	r := &renewal{parent: ctx, timeout: timeout, deadline: deadline, renew: renew, failed: failed}
	r.mu.Lock()
	r.timer = time.AfterFunc(timeout/3, r.tick)
	r.mu.Unlock()
	return r.stop
}

// renewal is the state of one renewLock.
type renewal struct {
	parent   context.Context
	timeout  time.Duration
	deadline *lockDeadline
	renew    func(context.Context) error
	failed   func(error) bool

	mu      sync.Mutex
	timer   *time.Timer
	stopped bool
	cancel  context.CancelFunc // of the renewal in flight, if any
}

// tick sends one renewal and schedules the next. The renewal's context
// is made here, not up front: most locks are released before the first tick.
func (r *renewal) tick() {
	r.mu.Lock()
	if r.stopped || r.parent.Err() != nil {
		r.mu.Unlock()
		return
	}
	ctx, cancel := context.WithCancel(r.parent)
	r.cancel = cancel
	r.mu.Unlock()
	sent := time.Now()
	err := r.renew(ctx)
	cancel()
	r.mu.Lock()
	r.cancel = nil
	stopped := r.stopped
	r.mu.Unlock()
	switch {
	case err == nil:
		r.deadline.extend(sent, r.timeout)
	case stopped || r.parent.Err() != nil:
		return // stopped meanwhile: the failure is ours
	case r.failed(err):
		return
	}
	// Like a ticker: the next tick is due a period after this one, at once
	// when the renewal took longer than that.
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.stopped {
		r.timer.Reset(max(0, r.timeout/3-time.Since(sent)))
	}
}

// stop ends the renewals and cancels the one in flight.
func (r *renewal) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true
	r.timer.Stop()
	if r.cancel != nil {
		r.cancel()
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
	var b *backoff.ExponentialBackOff // made at the first retry
	for tries := 1; ; tries++ {
		// An ack past the estimated deadline may still hold the lock (nobody
		// took it over yet): every attempt gets at least a few seconds.
		ctx, cancel := context.WithDeadline(context.Background(), later(deadline.get(), time.Now().Add(minAckTime)))
		err := op(ctx)
		cancel()
		if err == nil || !queue.IsTransient(err) {
			return err
		}
		if b == nil {
			b = retry.New(50*time.Millisecond, time.Second)
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
