package worker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/internal/redistest"
	"github.com/duroworker/duroworker/queue"
)

// TestStartRefusesEvictingRedis: on a real redis-server with
// maxmemory-policy allkeys-lru, Start refuses to run unless
// AllowEvictingRedis is set.
func TestStartRefusesEvictingRedis(t *testing.T) {
	srv := redistest.StartWith(t, redistest.Config{Args: []string{"--maxmemory", "100mb", "--maxmemory-policy", "allkeys-lru"}})
	store := queue.New(srv.Client(t), queue.Options{Prefix: "evict"})
	orchs := engine.NewOrchestrationRegistry().
		Register("O", func(ctx *engine.OrchestrationContext, in string) (string, error) { return in, nil }).MustBuild()
	newWorker := func(allow bool) *Worker {
		w, err := New(store, orchs, nil, Options{AllowEvictingRedis: allow, BlockTimeout: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	w := newWorker(false)
	if err := w.Start(context.Background()); !errors.Is(err, queue.ErrEvictingRedis) {
		t.Fatalf("Start on allkeys-lru: %v, want queue.ErrEvictingRedis", err)
	}
	if err := w.Shutdown(context.Background()); !errors.Is(err, ErrNotStarted) {
		t.Errorf("Shutdown of a refused worker: %v, want ErrNotStarted", err)
	}
	w = newWorker(true)
	if err := w.Start(context.Background()); err != nil {
		t.Fatalf("Start with AllowEvictingRedis: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}
