package worker

import (
	"context"
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/internal/redistest"
	"github.com/duroworker/duroworker/queue"
)

// TestStartedWorkerIsListedAndServes: a started worker advertises itself
// with its description, client.ServedBy names it for the orchestrations it
// registers and for nothing else as soon as Start returns, and
// LastAdvertised moves from zero.
func TestStartedWorkerIsListedAndServes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	srv := redistest.Start(t)
	ctx := context.Background()
	store := queue.New(srv.Client(t), queue.Options{Prefix: "fleet"})
	w := newEchoWorker(t, store, Options{Logger: quietLogger(), NodeID: "node-a",
		OrchestrationConcurrency: 3, ActivityConcurrency: 5})
	if !w.LastAdvertised().IsZero() {
		t.Fatal("advertised before Start")
	}
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer w.Shutdown(ctx)
	c := client.New(store)

	// Start returns with the node already advertised: it takes no work
	// before it is in the node list, where the dead-node reclaim sees it.
	ids, err := c.ServedBy(ctx, "Echo", "")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids, []string{"node-a"}) {
		t.Fatalf("ServedBy(Echo) = %v", ids)
	}
	if w.LastAdvertised().IsZero() {
		t.Fatal("LastAdvertised is zero after an advertisement")
	}
	if ids, err := c.ServedBy(ctx, "Echo", "1.0.0"); err != nil || !slices.Equal(ids, []string{"node-a"}) {
		t.Fatalf("ServedBy(Echo, 1.0.0) = %v, %v", ids, err)
	}
	if ids, err := c.ServedBy(ctx, "Echo", "2.0.0"); err != nil || len(ids) != 0 {
		t.Fatalf("ServedBy(Echo, 2.0.0) = %v, %v; no worker registers it", ids, err)
	}
	if ids, err := c.ServedBy(ctx, "Nobody", ""); err != nil || len(ids) != 0 {
		t.Fatalf("ServedBy(Nobody) = %v, %v", ids, err)
	}
	if _, err := c.ServedBy(ctx, "Echo", "not-a-version"); err == nil {
		t.Fatal("ServedBy accepted a malformed version")
	}

	nodes, err := c.ListNodes(ctx)
	if err != nil || len(nodes) != 1 {
		t.Fatalf("ListNodes = %+v, %v", nodes, err)
	}
	n := nodes[0]
	host, _ := os.Hostname()
	if n.ID != "node-a" || !n.Live || n.Host != host || n.PID != os.Getpid() || n.Engine != engine.Version ||
		n.ReplayRange == "" || n.OrchestrationConcurrency != 3 || n.ActivityConcurrency != 5 || n.Started.IsZero() {
		t.Fatalf("node = %+v", n)
	}

	// After a graceful shutdown the node is gone at once.
	if err := w.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if ids, err := c.ServedBy(ctx, "Echo", ""); err != nil || len(ids) != 0 {
		t.Fatalf("ServedBy after shutdown = %v, %v", ids, err)
	}
}

// TestSecondProcessUnderALiveNodeIDIsRefused: Start refuses a NodeID that
// another live worker advertises (it would take that worker's locks back
// as an earlier process's), after seeing it advertise again; once that
// worker has shut down (withdrawn), the same NodeID starts at once.
func TestSecondProcessUnderALiveNodeIDIsRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	srv := redistest.Start(t)
	ctx := context.Background()
	store := queue.New(srv.Client(t), queue.Options{Prefix: "dup"})
	opts := Options{Logger: quietLogger(), NodeID: "dup", NodeHeartbeat: 100 * time.Millisecond}
	first := newEchoWorker(t, store, opts)
	if err := first.Start(ctx); err != nil {
		t.Fatal(err)
	}
	second := newEchoWorker(t, store, opts)
	if err := second.Start(ctx); !errors.Is(err, ErrNodeIDInUse) {
		t.Fatalf("second Start under a live node id = %v, want ErrNodeIDInUse", err)
	}
	if err := second.Shutdown(ctx); !errors.Is(err, ErrNotStarted) {
		t.Fatalf("Shutdown of the refused worker = %v, want ErrNotStarted", err)
	}
	if err := first.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	third := newEchoWorker(t, store, opts)
	if err := third.Start(ctx); err != nil {
		t.Fatalf("Start after the node withdrew: %v", err)
	}
	defer third.Shutdown(ctx)
}

// newEchoWorker returns a worker of store that runs echoOrchestrations.
func newEchoWorker(t *testing.T, store *queue.Store, opts Options) *Worker {
	t.Helper()
	w, err := New(store, echoOrchestrations(), nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	return w
}
