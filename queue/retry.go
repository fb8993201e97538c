package queue

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/internal/retry"
)

// notRunPrefixes are the error replies with which a Redis server refuses a
// command without running it: the dataset is still loading, a script or
// module blocks the server, a replica has lost its master, or a cluster slot
// is moving or down.
var notRunPrefixes = []string{"LOADING ", "BUSY ", "MASTERDOWN ", "TRYAGAIN ", "CLUSTERDOWN "}

// isNotRun reports whether err says that Redis refused the command without
// running it (LOADING, BUSY, MASTERDOWN, TRYAGAIN, CLUSTERDOWN): running it
// again later is safe for any command, idempotent or not.
func isNotRun(err error) bool {
	var rerr redis.Error
	if err == nil || !errors.As(err, &rerr) {
		return false
	}
	msg := rerr.Error()
	for _, p := range notRunPrefixes {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// IsTransient reports whether err may pass by itself: the command was
// refused without running (isNotRun), or the connection failed (refused,
// reset, closed, timed out, or no pooled connection came free in time).
// After a connection error the command may or may not have run; only
// idempotent calls (fetches with a request id, acks, renewals, reads)
// should be retried on it. Script errors (LOCK_LOST, a
// malformed request) and context ends are not transient.
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if isNotRun(err) {
		return true
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		return strings.HasPrefix(rerr.Error(), "ERR max number of clients")
	}
	var nerr net.Error
	return errors.As(err, &nerr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, redis.ErrPoolTimeout)
}

// maxNotRunWait bounds how long a script call without a context deadline
// waits for a server that refuses commands (LOADING, BUSY, ...).
const maxNotRunWait = time.Minute

// scriptRunner is the client through which every script of the Store runs
// (redis.Script.Run calls EvalSha, then Eval on NOSCRIPT). While the server
// refuses commands without running them (isNotRun: LOADING after a restart,
// BUSY), it waits and retries with backoff, within the caller's context (at
// most maxNotRunWait when the context has no deadline), so that callers see
// a reply instead of a raw LOADING error. Any other error is returned as is:
// go-redis has already retried network errors where it could.
type scriptRunner struct {
	redis.UniversalClient
}

// EvalSha runs a cached script, retrying refusals.
func (r scriptRunner) EvalSha(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return retryNotRun(ctx, func() *redis.Cmd { return r.UniversalClient.EvalSha(ctx, sha1, keys, args...) })
}

// Eval runs a script by its source, retrying refusals.
func (r scriptRunner) Eval(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return retryNotRun(ctx, func() *redis.Cmd { return r.UniversalClient.Eval(ctx, script, keys, args...) })
}

func retryNotRun(ctx context.Context, run func() *redis.Cmd) *redis.Cmd {
	b := retry.New(50*time.Millisecond, time.Second)
	if _, ok := ctx.Deadline(); !ok {
		b.MaxElapsedTime = maxNotRunWait
	}
	for {
		cmd := run()
		if !isNotRun(cmd.Err()) {
			return cmd
		}
		wait := b.NextBackOff()
		if wait == backoff.Stop {
			return cmd
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return cmd
		case <-t.C:
		}
	}
}
