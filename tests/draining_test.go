package tests

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duroworker/duroworker/capability"
	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/worker"
)

// pinToNewerEngine rewrites a running instance as if a newer engine (0.2.0)
// had started its execution, optionally appending an event kind this engine
// does not know, the way a newer worker's history would look.
func pinToNewerEngine(t *testing.T, e *env, id string, unknownEvent bool) {
	t.Helper()
	ctx := context.Background()
	k := e.store.Keys()
	rec, err := e.store.Instance(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	newBucket := capability.ExecutionBucket(rec.Name, rec.Version, "0.2.0")
	pipe := e.rdb.TxPipeline()
	pipe.ZRem(ctx, k.ReadyKey(rec.ReadyBucket), id)
	pipe.HSet(ctx, k.InstanceKey(id), "pin", "0.2.0", "rq", newBucket, "cache", "")
	pipe.SAdd(ctx, k.EnginesKey(), "0.2.0")
	pipe.SAdd(ctx, k.OrchestrationBucketsKey(), newBucket)
	if unknownEvent {
		pipe.RPush(ctx, k.HistoryKey(id, rec.ExecutionID), `{"id":3,"kind":"HologramProjected","ts":1,"engine":"0.2.0"}`)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestSeedDrainingStuckOrchestrations is the seed's "Draining Stuck
// Orchestrations": executions pinned to an engine no running node supports
// wait untouched; widening SupportedReplayVersions on one node lets it fetch
// them: a history it cannot decode fails as poison (failed deserialization)
// after MaxAttempts without ever reaching the replay engine, a history it can
// decode is processed normally; then the range is reverted.
func TestSeedDrainingStuckOrchestrations(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env) {
		var replays atomic.Int32
		orchs := engine.NewOrchestrationRegistry().Register("Waiter", func(ctx *engine.OrchestrationContext, in string) (string, error) {
			replays.Add(1)
			return ctx.WaitForEvent("go").Get()
		}).MustBuild()
		ctx := context.Background()
		first := e.startWorker(orchs, nil, worker.Options{NodeID: "first"})
		for _, id := range []string{"undecodable", "decodable"} {
			if err := e.client.Start(ctx, id, "Waiter", ""); err != nil {
				t.Fatal(err)
			}
		}
		eventually(t, 10*time.Second, "both running", func() bool {
			a, _ := e.client.Status(ctx, "undecodable")
			b, _ := e.client.Status(ctx, "decodable")
			return a.State == client.StateRunning && b.State == client.StateRunning
		})
		_ = first.Shutdown(ctx)
		pinToNewerEngine(t, e, "undecodable", true)
		pinToNewerEngine(t, e, "decodable", false)
		for _, id := range []string{"undecodable", "decodable"} {
			if err := e.client.RaiseEvent(ctx, id, "go", "went"); err != nil {
				t.Fatal(err)
			}
		}

		// Stuck: the default range [0.0.0, own version] excludes 0.2.0.
		opts := fastPoison
		opts.NodeID = "default-range"
		stuckNode := e.startWorker(orchs, nil, opts)
		time.Sleep(400 * time.Millisecond)
		for _, id := range []string{"undecodable", "decodable"} {
			rec, _ := e.store.Instance(ctx, id)
			if rec.Attempts != 0 || rec.Locked || rec.Status != "Running" {
				t.Fatalf("%s was touched by a node whose range excludes its pin: %+v", id, rec)
			}
		}
		_ = stuckNode.Shutdown(ctx)

		// Drain: one node with a wide range.
		wide := capability.MustRange("0.0.0", "99.0.0")
		opts.NodeID = "draining"
		opts.SupportedReplayVersions = &wide
		replays.Store(0)
		drainer := e.startWorker(orchs, nil, opts)
		st := e.wait("undecodable")
		if st.State != client.StateFailed || st.Failure.Kind != engine.KindFailedDeserialization || !strings.Contains(st.Failure.Error(), "HologramProjected") {
			t.Fatalf("undecodable: %+v", st.Failure)
		}
		if st := e.wait("decodable"); st.State != client.StateCompleted || st.Output != "went" {
			t.Fatalf("decodable: %+v", st)
		}
		if n := replays.Load(); n != 1 {
			t.Fatalf("the replay engine ran %d times; only the decodable history may reach it", n)
		}
		// Revert: back to the default range.
		_ = drainer.Shutdown(ctx)
		e.startWorker(orchs, nil, worker.Options{NodeID: "reverted"})
		if err := e.client.Start(ctx, "after", "Waiter", ""); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "after running", func() bool {
			st, _ := e.client.Status(ctx, "after")
			return st.State == client.StateRunning
		})
	})
}
