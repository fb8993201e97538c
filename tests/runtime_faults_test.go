package tests

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/worker"
)

// syncBuffer is a bytes.Buffer safe for concurrent writers (a log sink).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestActivityPanicStoresTheMessageNotTheStack: an activity panic fails the
// activity with the panic message; the goroutine stack (with this worker's
// file paths) goes to the worker's log only, never to history or clients.
func TestActivityPanicStoresTheMessageNotTheStack(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env) {
		orchs := engine.NewOrchestrationRegistry().Register("CallsPanicky", func(ctx *engine.OrchestrationContext, in string) (string, error) {
			return ctx.ScheduleActivity("Panicky", in).Get()
		}).MustBuild()
		acts := engine.NewActivityRegistry().Register("Panicky", func(ctx *engine.ActivityContext, in string) (string, error) {
			panic("boom " + in)
		}).MustBuild()
		var logs syncBuffer
		e.startWorker(orchs, acts, worker.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		ctx := context.Background()
		if err := e.client.Start(ctx, "p", "CallsPanicky", "x"); err != nil {
			t.Fatal(err)
		}
		st := e.wait("p")
		if st.State != client.StateFailed || st.Failure == nil {
			t.Fatalf("status %+v", st)
		}
		msg := st.Failure.Error()
		if !strings.Contains(msg, "activity panicked: boom x") {
			t.Fatalf("failure %q does not carry the panic message", msg)
		}
		hist, err := e.store.History(ctx, "p", 1)
		if err != nil {
			t.Fatal(err)
		}
		for _, where := range append([]string{msg, st.Output}, hist...) {
			if strings.Contains(where, "goroutine ") || strings.Contains(where, ".go:") {
				t.Fatalf("stack trace stored: %q", where)
			}
		}
		if l := logs.String(); !strings.Contains(l, "activity panicked") || !strings.Contains(l, "runtime_faults_test.go") {
			t.Fatalf("the worker log lacks the panic's stack:\n%s", l)
		}
	})
}

// TestUnreadableOrEmptyHistoryIsPoisoned: an instance whose history is
// missing (empty) or unreadable (a key of the wrong type) counts every
// attempt and is poisoned after MaxAttempts, with a dead letter, instead of
// being retried forever.
func TestUnreadableOrEmptyHistoryIsPoisoned(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env) {
		orchs := engine.NewOrchestrationRegistry().Register("Waiter", func(ctx *engine.OrchestrationContext, in string) (string, error) {
			return ctx.WaitForEvent("go").Get()
		}).MustBuild()
		// The same node id both times: in sticky mode the second worker is
		// the cache owner, so the fetch omits the history and the worker
		// reads it itself.
		opts := fastPoison
		opts.NodeID = "n1"
		w := e.startWorker(orchs, nil, opts)
		ctx := context.Background()
		ids := []string{"empty", "unreadable"}
		for _, id := range ids {
			if err := e.client.Start(ctx, id, "Waiter", ""); err != nil {
				t.Fatal(err)
			}
		}
		for _, id := range ids {
			eventually(t, 10*time.Second, id+" running", func() bool {
				st, _ := e.client.Status(ctx, id)
				return st.State == client.StateRunning
			})
		}
		_ = w.Shutdown(ctx)
		k := e.store.Keys()
		if err := e.rdb.Del(ctx, k.HistoryKey("empty", 1)).Err(); err != nil {
			t.Fatal(err)
		}
		if err := e.rdb.Del(ctx, k.HistoryKey("unreadable", 1)).Err(); err != nil {
			t.Fatal(err)
		}
		if err := e.rdb.Set(ctx, k.HistoryKey("unreadable", 1), "not a list", 0).Err(); err != nil {
			t.Fatal(err)
		}
		e.startWorker(orchs, nil, opts)
		for _, id := range ids {
			if err := e.client.RaiseEvent(ctx, id, "go", "x"); err != nil {
				t.Fatal(err)
			}
		}
		for _, id := range ids {
			st := e.wait(id)
			if st.State != client.StateFailed || !engine.IsPoison(st.Failure) || st.Failure.Attempts != 4 || st.Failure.MaxAttempts != 3 {
				t.Fatalf("%s: %+v", id, st.Failure)
			}
		}
		dead, err := e.store.DeadLetters(ctx, "", 10)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		for _, d := range dead {
			got[d.InstanceID]++
		}
		for _, id := range ids {
			if got[id] != 1 {
				t.Fatalf("dead letters %+v: want one for %s", dead, id)
			}
		}
	})
}
