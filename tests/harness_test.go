package tests

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/internal/redistest"
	"github.com/duroworker/duroworker/queue"
	"github.com/duroworker/duroworker/worker"
)

// testLogger is silent unless DUROWORKER_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("DUROWORKER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// env is one store with its client and the workers a test starts on it.
type env struct {
	t      *testing.T
	rdb    *redis.Client
	store  *queue.Store
	client *client.Client
	sticky bool
}

func newEnv(t *testing.T, rdb *redis.Client, sticky bool) *env {
	t.Helper()
	store := queue.New(rdb, queue.Options{Prefix: "t"})
	c := client.New(store)
	t.Cleanup(func() { _ = c.Close() })
	return &env{t: t, rdb: rdb, store: store, client: c, sticky: sticky}
}

// startWorker starts a worker with fast test settings; it is shut down when
// the test ends.
func (e *env) startWorker(orchs *engine.OrchestrationRegistry, acts *engine.ActivityRegistry, opts worker.Options) *worker.Worker {
	e.t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger()
	}
	if !e.sticky {
		opts.ReplayCacheSize = -1
	}
	if opts.BlockTimeout == 0 {
		opts.BlockTimeout = 500 * time.Millisecond
	}
	if opts.UnregisteredBackoffBase == 0 {
		opts.UnregisteredBackoffBase = 20 * time.Millisecond
		opts.UnregisteredBackoffMax = 200 * time.Millisecond
	}
	w, err := worker.New(e.store, orchs, acts, opts)
	if err != nil {
		e.t.Fatalf("worker.New: %v", err)
	}
	if err := w.Start(context.Background()); err != nil {
		e.t.Fatalf("worker.Start: %v", err)
	}
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = w.Shutdown(ctx)
	})
	return w
}

// wait waits (bounded) for the instance to end.
func (e *env) wait(id string) client.Status {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := e.client.Wait(ctx, id)
	if err != nil {
		e.t.Fatalf("wait %s: %v (last status %+v)", id, err, st)
	}
	return st
}

// waitAll waits (bounded) for the instances to end, with one WaitMany,
// and returns their statuses by instance id.
func (e *env) waitAll(ids ...string) map[string]client.Status {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := make(map[string]client.Status, len(ids))
	for st, err := range e.client.WaitMany(ctx, ids) {
		if err != nil {
			e.t.Fatalf("waiting for %d instances (%d ended): %v", len(ids), len(out), err)
		}
		out[st.InstanceID] = st
	}
	return out
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// forEachSetup runs fn on miniredis and on a real redis-server, each with the
// sticky replay cache on and off.
func forEachSetup(t *testing.T, fn func(t *testing.T, e *env)) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb *redis.Client, b redistest.Backend) {
		for _, sticky := range []bool{true, false} {
			name := "sticky"
			if !sticky {
				name = "replay"
			}
			t.Run(name, func(t *testing.T) {
				_ = rdb.FlushDB(context.Background()).Err()
				fn(t, newEnv(t, rdb, sticky))
			})
		}
	})
}
