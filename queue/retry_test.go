package queue

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/internal/redistest"
)

// replyError is a Redis error reply, as the server sends it.
type replyError string

func (e replyError) Error() string { return string(e) }
func (replyError) RedisError()     {}

// refuseScripts is a go-redis hook that answers the first n script calls
// with reply instead of sending them.
type refuseScripts struct {
	n     int64
	reply error
	calls atomic.Int64
}

func (h *refuseScripts) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *refuseScripts) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *refuseScripts) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if name := cmd.Name(); name == "evalsha" || name == "eval" {
			if h.calls.Add(1) <= h.n {
				cmd.SetErr(h.reply)
				return h.reply
			}
		}
		return next(ctx, cmd)
	}
}

// TestScriptsWaitOutLoading: a script refused with LOADING (Redis reloading
// its dataset after a restart) or BUSY is retried within the caller's
// context instead of returning the raw error; when the context ends first,
// the caller gets the refusal.
func TestScriptsWaitOutLoading(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb *redis.Client, b redistest.Backend) {
		for _, reply := range []string{"LOADING Redis is loading the dataset in memory", "BUSY Redis is busy running a script"} {
			h := &refuseScripts{n: 3, reply: replyError(reply)}
			c := redis.NewClient(rdb.Options())
			c.AddHook(h)
			s := New(c, Options{Prefix: "retry"})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := s.CreateInstance(ctx, CreateRequest{InstanceID: "i-" + reply[:4], Name: "o", Bucket: "o:o", Message: "m"})
			cancel()
			if err != nil {
				t.Fatalf("%s: CreateInstance: %v", reply, err)
			}
			if got := h.calls.Load(); got < 4 {
				t.Fatalf("%s: %d script calls, want the refused ones retried", reply, got)
			}
			_ = c.Close()
		}

		h := &refuseScripts{n: 1 << 30, reply: replyError("LOADING Redis is loading the dataset in memory")}
		c := redis.NewClient(rdb.Options())
		defer c.Close()
		c.AddHook(h)
		s := New(c, Options{Prefix: "retry"})
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_, err := s.FetchOrchestrations(ctx, FetchOrchestrationsRequest{Buckets: []string{"o:o"}, Max: 1, LockTimeout: time.Second})
		if err == nil || !strings.Contains(err.Error(), "LOADING") {
			t.Fatalf("fetch while Redis keeps loading: %v, want the LOADING refusal once the context ends", err)
		}
		if h.calls.Load() < 2 {
			t.Fatalf("the refused fetch was not retried")
		}
	})
}

func TestTransientErrors(t *testing.T) {
	for _, tt := range []struct {
		err             error
		notRun, transit bool
	}{
		{replyError("LOADING Redis is loading"), true, true},
		{replyError("BUSY Redis is busy"), true, true},
		{replyError("LOCK_LOST i1"), false, false},
		{replyError("ERR wrong number of arguments"), false, false},
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, false, true},
		{syscall.ECONNRESET, false, true},
		{context.DeadlineExceeded, false, false},
		{ErrLockLost, false, false},
		{errors.New("other"), false, false},
	} {
		if got := isNotRun(tt.err); got != tt.notRun {
			t.Errorf("isNotRun(%v) = %v", tt.err, got)
		}
		if got := IsTransient(tt.err); got != tt.transit {
			t.Errorf("IsTransient(%v) = %v", tt.err, got)
		}
	}
}
