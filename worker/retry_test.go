package worker

import (
	"context"
	"errors"
	"net"
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
