package worker

import (
	"context"
	"errors"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/duroworker/duroworker/queue"
)

// TestAckRetriesStopAtTheLockDeadline: transient ack errors are retried
// until the lock deadline, then the last error is returned; other errors
// (a lost lock) are returned at once.
func TestAckRetriesStopAtTheLockDeadline(t *testing.T) {
	w := &Worker{log: quietLogger()}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}

	calls := 0
	err := w.retryUntilLockDeadline(newLockDeadline(300*time.Millisecond), func(ctx context.Context) error {
		calls++
		return refused
	})
	if !errors.Is(err, syscall.ECONNREFUSED) || calls < 2 {
		t.Fatalf("transient errors: %v after %d calls, want retries and then the last error", err, calls)
	}

	calls = 0
	err = w.retryUntilLockDeadline(newLockDeadline(time.Minute), func(ctx context.Context) error {
		calls++
		return queue.ErrLockLost
	})
	if !errors.Is(err, queue.ErrLockLost) || calls != 1 {
		t.Fatalf("lost lock: %v after %d calls, want it returned at once", err, calls)
	}

	calls = 0
	err = w.retryUntilLockDeadline(newLockDeadline(time.Minute), func(ctx context.Context) error {
		if calls++; calls < 3 {
			return refused
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("recovering store: %v after %d calls", err, calls)
	}
}

// TestRenewLockRetriesUntilTheLockIsGone: the one renewal loop of turns and
// activities moves the deadline on after each success, retries a failure
// that failed does not call final, and stops for good after one it does.
func TestRenewLockRetriesUntilTheLockIsGone(t *testing.T) {
	deadline := newLockDeadline(30 * time.Millisecond)
	before := deadline.get()
	results := make(chan error, 4)
	results <- nil
	results <- errors.New("connection reset")
	results <- queue.ErrLockLost
	var calls, failures int
	var mu sync.Mutex
	done := make(chan struct{})
	stop := renewLock(context.Background(), 30*time.Millisecond, deadline,
		func(context.Context) error {
			mu.Lock()
			defer mu.Unlock()
			calls++
			select {
			case err := <-results:
				return err
			default:
				t.Error("renewed again after the lock was gone")
				return nil
			}
		},
		func(err error) bool {
			mu.Lock()
			defer mu.Unlock()
			failures++
			gone := errors.Is(err, queue.ErrLockLost)
			if gone {
				close(done)
			}
			return gone
		})
	defer stop()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("renewal never reported the lost lock")
	}
	time.Sleep(50 * time.Millisecond) // a few more ticks: none may renew
	mu.Lock()
	defer mu.Unlock()
	if calls != 3 || failures != 2 {
		t.Fatalf("%d renewals, %d failures; want 3 and 2", calls, failures)
	}
	if !deadline.get().After(before) {
		t.Fatal("the successful renewal did not move the deadline on")
	}
}

// TestRenewLockStopsWithItsContext: stop ends the loop; a renewal that fails
// because of it is not reported.
func TestRenewLockStopsWithItsContext(t *testing.T) {
	started := make(chan struct{})
	var once sync.Once
	stop := renewLock(context.Background(), 30*time.Millisecond, newLockDeadline(time.Second),
		func(ctx context.Context) error {
			once.Do(func() { close(started) })
			<-ctx.Done()
			return ctx.Err()
		},
		func(err error) bool {
			t.Errorf("failure reported after stop: %v", err)
			return true
		})
	<-started
	stop()
	time.Sleep(30 * time.Millisecond)
}
