// Command draining is the versioning guide's "Draining stuck orchestrations
// (version mismatch)": executions pinned to an engine version that no running
// node supports wait untouched, until one node widens its
// SupportedReplayVersions for a while.
//
// Each execution is pinned to the version of the replay engine that started
// it (engine.Version, today 0.1.0), and a node only replays executions whose
// pin lies in its range, by default every version up to its own. The program
// fakes what a newer engine would have left behind, with plain Redis commands
// on the instance hash and its history (as tests/draining_test.go does):
//
//   - "decodable" is re-pinned to engine 0.2.0 and moved to that engine's
//     bucket; its history is unchanged, so this engine can still read it;
//   - "undecodable" is re-pinned the same way, and an event of a kind this
//     engine does not know ("HologramProjected") is appended to its history.
//
// Both then receive the external event they wait for. The scenario:
//
//  1. Stuck: node-default, with the default range, never touches either of
//     them (no attempt, no lock); the queue depths show their bucket as
//     unserved.
//  2. Drain: node-drain starts with SupportedReplayVersions 0.0.0..99.0.0 and
//     MaxAttempts 2. It fetches both. The undecodable history fails to decode
//     before anything is replayed; it is released for a second per attempt,
//     and after MaxAttempts the instance ends Failed with a poison error of
//     kind failed_deserialization. The decodable one is replayed and
//     completes with the event's payload.
//  3. Revert: node-drain is replaced by node-reverted, back on the default
//     range, which runs new work normally.
//
// What to look for in the output: "attempts 0, locked false" in step 1; the
// warnings of node-drain ("history cannot be decoded by this engine; not
// replaying it"), the poison error naming the unknown event, and the count
// of replays of the orchestration code (1: only the decodable history ever
// reached the replay engine).
//
//	go run ./examples/draining [-redis redis://localhost:6379/0] [-v]
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/duroworker/duroworker/capability"
	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/examples/internal/demo"
	"github.com/duroworker/duroworker/worker"
)

// Name is the orchestration: it waits for the "go" event and returns its
// payload.
const Name = "examples::orchestration::waiter"

// newerEngine is the engine version the stuck executions are pinned to.
const newerEngine = "0.2.0"

func main() { os.Exit(run(os.Args[1:], os.Stdout)) }

func run(args []string, out io.Writer) int { return demo.Run("draining", args, out, draining) }

func draining(ctx context.Context, env *demo.Env) error {
	// replays counts how often the orchestration code ran: every replay
	// or resumption goes through it.
	var replays atomic.Int32
	orchs := engine.NewOrchestrationRegistry().Register(Name, func(ctx *engine.OrchestrationContext, _ string) (string, error) {
		replays.Add(1)
		return ctx.WaitForEvent("go").Get()
	}).MustBuild()
	ids := []string{"undecodable", "decodable"}

	// Two executions started by this engine (pin 0.1.0)...
	first, err := env.StartNode("node-first", orchs, nil, worker.Options{})
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := env.Client.Start(ctx, id, Name, ""); err != nil {
			return err
		}
		if _, err := env.WaitRunning(ctx, id); err != nil {
			return err
		}
	}
	if err := env.StopNode(first); err != nil {
		return err
	}
	// ... made to look as if a newer engine had started them.
	for _, id := range ids {
		if err := pinToNewerEngine(ctx, env, id, id == "undecodable"); err != nil {
			return err
		}
		if err := env.Client.RaiseEvent(ctx, id, "go", "went"); err != nil {
			return err
		}
	}
	if err := showInstances(ctx, env, ids); err != nil {
		return err
	}

	// 1. Stuck: the default range, [0.0.0, 0.1.0], excludes 0.2.0.
	env.Printf("step 1: a node with the default SupportedReplayVersions")
	stuck, err := env.StartNode("node-default", orchs, nil, worker.Options{
		MaxAttempts:   2,
		NodeHeartbeat: 50 * time.Millisecond, // looks for unserved work often
	})
	if err != nil {
		return err
	}
	time.Sleep(500 * time.Millisecond)
	if err := showInstances(ctx, env, ids); err != nil {
		return err
	}
	for _, id := range ids {
		rec, err := env.Store.Instance(ctx, id)
		if err != nil {
			return err
		}
		if rec.Attempts != 0 || rec.Locked || rec.Status != "Running" {
			return fmt.Errorf("%s was touched by a node whose range excludes its pin: %+v", id, rec)
		}
	}
	depths, err := env.Client.GetQueueDepths(ctx)
	if err != nil {
		return err
	}
	for _, d := range depths.Orchestrations {
		env.Printf("queue depth: %s ready %d locked %d unserved %v", d.Bucket, d.Ready, d.Locked, d.Unserved)
	}
	if err := env.StopNode(stuck); err != nil {
		return err
	}

	// 2. Drain: one node accepts executions pinned to any engine version.
	env.Printf("step 2: one node with SupportedReplayVersions 0.0.0..99.0.0, MaxAttempts 2")
	wide := capability.MustRange("0.0.0", "99.0.0")
	replays.Store(0)
	env.ShowWarnings(true)
	drain, err := env.StartNode("node-drain", orchs, nil, worker.Options{
		SupportedReplayVersions: &wide,
		MaxAttempts:             2,
	})
	if err != nil {
		return err
	}
	bad, err := env.Wait(ctx, "undecodable")
	if err != nil {
		return err
	}
	good, err := env.Wait(ctx, "decodable")
	if err != nil {
		return err
	}
	env.ShowWarnings(false)
	env.Printf("undecodable: %s, %v", bad.State, bad.Failure)
	env.Printf("decodable: %s, output %q", good.State, good.Output)
	n := replays.Load()
	env.Printf("the orchestration code ran %d time(s) on node-drain", n)
	if bad.State != client.StateFailed || bad.Failure == nil || bad.Failure.Kind != engine.KindFailedDeserialization ||
		!strings.Contains(bad.Failure.Error(), "HologramProjected") {
		return fmt.Errorf("undecodable ended %s (%v), want Failed with a failed_deserialization poison error", bad.State, bad.Failure)
	}
	if good.State != client.StateCompleted || good.Output != "went" {
		return fmt.Errorf("decodable ended %s %q (%v), want Completed \"went\"", good.State, good.Output, good.Failure)
	}
	if n != 1 {
		return fmt.Errorf("the orchestration code ran %d times; only the decodable history may reach the replay engine", n)
	}

	// 3. Revert: back to the default range.
	env.Printf("step 3: revert to the default range")
	if err := env.StopNode(drain); err != nil {
		return err
	}
	if _, err := env.StartNode("node-reverted", orchs, nil, worker.Options{}); err != nil {
		return err
	}
	if err := env.Client.Start(ctx, "after", Name, ""); err != nil {
		return err
	}
	info, err := env.WaitRunning(ctx, "after")
	if err != nil {
		return err
	}
	if err := env.Client.RaiseEvent(ctx, "after", "go", "normal again"); err != nil {
		return err
	}
	after, err := env.Wait(ctx, "after")
	if err != nil {
		return err
	}
	env.Printf("after: engine pin %s, %s, output %q", info.EnginePin, after.State, after.Output)
	if after.State != client.StateCompleted || info.EnginePin != engine.Version {
		return fmt.Errorf("after ended %s with pin %s", after.State, info.EnginePin)
	}
	return nil
}

// pinToNewerEngine rewrites a running instance as if engine 0.2.0 had
// started its execution: pin, ready bucket and the registries that list
// them, plus, with unknownEvent, an event of a kind this engine does not
// know at the end of its history.
func pinToNewerEngine(ctx context.Context, env *demo.Env, id string, unknownEvent bool) error {
	k := env.Store.Keys()
	rec, err := env.Store.Instance(ctx, id)
	if err != nil {
		return err
	}
	bucket := capability.ExecutionBucket(rec.Name, rec.Version, newerEngine)
	hist := k.HistoryKey(id, rec.ExecutionID)
	n, err := env.Redis.LLen(ctx, hist).Result()
	if err != nil {
		return err
	}
	pipe := env.Redis.TxPipeline()
	pipe.ZRem(ctx, k.ReadyKey(rec.ReadyBucket), id)
	pipe.HSet(ctx, k.InstanceKey(id), "pin", newerEngine, "rq", bucket, "cache", "")
	pipe.SAdd(ctx, k.EnginesKey(), newerEngine)
	pipe.SAdd(ctx, k.OrchestrationBucketsKey(), bucket)
	what := "re-pinned to engine " + newerEngine
	if unknownEvent {
		ev := fmt.Sprintf(`{"id":%d,"kind":"HologramProjected","ts":%d,"engine":%q}`, n+1, time.Now().UnixMilli(), newerEngine)
		pipe.RPush(ctx, hist, ev)
		what += ", appended " + ev
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	env.Printf("%s: %s (bucket %s)", id, what, bucket)
	return nil
}

func showInstances(ctx context.Context, env *demo.Env, ids []string) error {
	for _, id := range ids {
		rec, err := env.Store.Instance(ctx, id)
		if err != nil {
			return err
		}
		env.Printf("%s: %s, engine pin %s, attempts %d, locked %v", id, rec.Status, rec.EnginePin, rec.Attempts, rec.Locked)
	}
	return nil
}
