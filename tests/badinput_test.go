package tests

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/capability"
	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/internal/redistest"
	"github.com/duroworker/duroworker/queue"
	"github.com/duroworker/duroworker/worker"
)

// fastPoison makes poison reachable in a test: few attempts, short backoff,
// quick discovery of unserved buckets.
var fastPoison = worker.Options{
	MaxAttempts:             3,
	UnregisteredBackoffBase: 10 * time.Millisecond,
	UnregisteredBackoffMax:  50 * time.Millisecond,
	NodeHeartbeat:           50 * time.Millisecond,
}

func echoRegistries() (*engine.OrchestrationRegistry, *engine.ActivityRegistry) {
	orchs := engine.NewOrchestrationRegistry().Register("Echo", func(ctx *engine.OrchestrationContext, in string) (string, error) {
		return ctx.ScheduleActivity("Echo", in).Get()
	}).MustBuild()
	acts := engine.NewActivityRegistry().Register("Echo", func(ctx *engine.ActivityContext, in string) (string, error) {
		return in, nil
	}).MustBuild()
	return orchs, acts
}

func TestUnregisteredOrchestrationBacksOffThenPoisons(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env) {
		orchs, acts := echoRegistries()
		e.startWorker(orchs, acts, fastPoison)
		ctx := context.Background()
		if err := e.client.Start(ctx, "nope-1", "NoSuchOrchestration", "x"); err != nil {
			t.Fatal(err)
		}
		if err := e.client.StartVersioned(ctx, "nope-2", "Echo", "9.9.9", "x"); err != nil {
			t.Fatal(err)
		}
		for id, want := range map[string]string{"nope-1": `"NoSuchOrchestration"`, "nope-2": "9.9.9"} {
			st := e.wait(id)
			if st.State != client.StateFailed || st.Failure == nil || st.Failure.Category != engine.CategoryPoison {
				t.Fatalf("%s: status %+v", id, st)
			}
			msg := st.Failure.Error()
			if !strings.Contains(msg, "exceeded 4 attempts (max 3)") || !strings.Contains(msg, "not registered") || !strings.Contains(msg, want) {
				t.Fatalf("%s: poison reason %q does not name the cause", id, msg)
			}
		}
		// The worker is unharmed: a registered orchestration still runs.
		if err := e.client.Start(ctx, "fine", "Echo", "ok"); err != nil {
			t.Fatal(err)
		}
		if st := e.wait("fine"); st.Output != "ok" {
			t.Fatalf("after poison: %+v", st)
		}
	})
}

func TestUnregisteredActivityPoisonsItsOrchestration(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env) {
		orchs := engine.NewOrchestrationRegistry().Register("CallsMissing", func(ctx *engine.OrchestrationContext, in string) (string, error) {
			_, err := ctx.ScheduleActivity("Missing", in).Get()
			return "caught: " + err.Error(), nil // poison is not catchable
		}).MustBuild()
		_, acts := echoRegistries()
		e.startWorker(orchs, acts, fastPoison)
		if err := e.client.Start(context.Background(), "m", "CallsMissing", "x"); err != nil {
			t.Fatal(err)
		}
		st := e.wait("m")
		if st.State != client.StateFailed || !engine.IsPoison(st.Failure) || st.Failure.Kind != engine.KindPoisonActivity {
			t.Fatalf("status %+v", st)
		}
		if !strings.Contains(st.Failure.Error(), `activity "Missing" is not registered`) {
			t.Fatalf("reason %q", st.Failure.Error())
		}
	})
}

func TestMalformedTypedInputIsAnApplicationError(t *testing.T) {
	type order struct {
		Qty int `json:"qty"`
	}
	forEachSetup(t, func(t *testing.T, e *env) {
		b := engine.NewOrchestrationRegistry()
		engine.RegisterTyped(b, "Typed", func(ctx *engine.OrchestrationContext, o order) (int, error) {
			return engine.ScheduleActivityTyped[int](ctx, "Double", o).Get()
		})
		engine.RegisterTyped(b, "BadToActivity", func(ctx *engine.OrchestrationContext, s string) (int, error) {
			return engine.ScheduleActivityTyped[int](ctx, "Double", s).Get()
		})
		ab := engine.NewActivityRegistry()
		engine.RegisterActivityTyped(ab, "Double", func(ctx *engine.ActivityContext, o order) (int, error) {
			return 2 * o.Qty, nil
		})
		e.startWorker(b.MustBuild(), ab.MustBuild(), worker.Options{})
		ctx := context.Background()
		for id, input := range map[string]string{"good": `{"qty":21}`, "bad": `{"qty":"many"`} {
			if err := e.client.Start(ctx, id, "Typed", input); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.client.Start(ctx, "bad-activity-input", "BadToActivity", "not json"); err != nil {
			t.Fatal(err)
		}
		if st := e.wait("good"); st.Output != "42" {
			t.Fatalf("good: %+v", st)
		}
		for _, id := range []string{"bad", "bad-activity-input"} {
			st := e.wait(id)
			if st.State != client.StateFailed || st.Failure.Category != engine.CategoryApplication || !strings.Contains(st.Failure.Error(), "invalid input") {
				t.Fatalf("%s: %+v", id, st.Failure)
			}
		}
	})
}

func TestClientRejectsBadArguments(t *testing.T) {
	_, rdb := redistest.StartMini(t)
	c := client.New(queue.New(rdb, queue.Options{}))
	defer c.Close()
	ctx := context.Background()
	cases := map[string]error{
		"empty id":         c.Start(ctx, "", "Echo", ""),
		"control char id":  c.Start(ctx, "a\nb", "Echo", ""),
		"long id":          c.Start(ctx, strings.Repeat("x", client.MaxInstanceIDBytes+1), "Echo", ""),
		"bad name":         c.Start(ctx, "i", "has{brace}", ""),
		"bad version":      c.StartVersioned(ctx, "i", "Echo", "v1", ""),
		"oversized input":  c.Start(ctx, "i", "Echo", strings.Repeat("x", client.MaxPayloadBytes+1)),
		"oversized event":  c.RaiseEvent(ctx, "i", "e", strings.Repeat("x", client.MaxPayloadBytes+1)),
		"empty event name": c.RaiseEvent(ctx, "i", "", "x"),
	}
	for name, err := range cases {
		if !errors.Is(err, client.ErrInvalidInput) {
			t.Errorf("%s: err = %v, want ErrInvalidInput", name, err)
		}
	}
	if err := c.RaiseEvent(ctx, "missing", "e", "x"); !errors.Is(err, client.ErrInstanceNotFound) {
		t.Errorf("event to a missing instance: %v", err)
	}
	if st, err := c.Status(ctx, "missing"); err != nil || st.State != client.StateNotFound {
		t.Errorf("status of a missing instance: %+v %v", st, err)
	}
}

func TestMalformedMessageDoesNotBlockTheInstance(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env) {
		orchs := engine.NewOrchestrationRegistry().Register("Waiter", func(ctx *engine.OrchestrationContext, in string) (string, error) {
			return ctx.WaitForEvent("go").Get()
		}).MustBuild()
		e.startWorker(orchs, nil, worker.Options{})
		ctx := context.Background()
		if err := e.client.Start(ctx, "w", "Waiter", ""); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "w running", func() bool {
			st, _ := e.client.Status(ctx, "w")
			return st.State == client.StateRunning
		})
		// A foreign producer writes garbage into the inbox, then a real event.
		for _, raw := range []string{`not json`, `{"kind":"Teleport"}`, `{"kind":"ActivityCompleted"}`} {
			if err := e.store.Enqueue(ctx, "w", raw); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.client.RaiseEvent(ctx, "w", "go", "went"); err != nil {
			t.Fatal(err)
		}
		if st := e.wait("w"); st.Output != "went" {
			t.Fatalf("%+v", st)
		}
	})
}

func TestUndecodableHistoryIsNeverReplayedAndPoisons(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env) {
		replayed := make(chan struct{}, 100)
		orchs := engine.NewOrchestrationRegistry().Register("Waiter", func(ctx *engine.OrchestrationContext, in string) (string, error) {
			if !ctx.IsReplaying() {
				replayed <- struct{}{}
			}
			return ctx.WaitForEvent("go").Get()
		}).MustBuild()
		w := e.startWorker(orchs, nil, fastPoison)
		ctx := context.Background()
		if err := e.client.Start(ctx, "future", "Waiter", ""); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "first turn", func() bool {
			st, _ := e.client.Status(ctx, "future")
			return st.State == client.StateRunning
		})
		_ = w.Shutdown(ctx) // drop the sticky cache: the next turn must read history
		// A newer engine appended an event kind this engine does not know.
		histKey := e.store.Keys().HistoryKey("future", 1)
		if err := e.rdb.RPush(ctx, histKey, `{"id":3,"kind":"QuantumEntangled","ts":1,"engine":"9.0.0"}`).Err(); err != nil {
			t.Fatal(err)
		}
		<-replayed
		e.startWorker(orchs, nil, fastPoison)
		if err := e.client.RaiseEvent(ctx, "future", "go", "x"); err != nil {
			t.Fatal(err)
		}
		st := e.wait("future")
		if st.State != client.StateFailed || st.Failure.Kind != engine.KindFailedDeserialization || !strings.Contains(st.Failure.Error(), "QuantumEntangled") {
			t.Fatalf("%+v", st.Failure)
		}
		select {
		case <-replayed:
			t.Fatal("the undecodable history reached the replay engine")
		default:
		}
	})
}

// TestExecutionsPinnedOutsideTheRangeAreNotFetched: a worker whose supported
// replay range excludes an execution's engine pin never locks it, however
// long it runs; a compatible worker then finishes it.
func TestExecutionsPinnedOutsideTheRangeAreNotFetched(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env) {
		orchs := engine.NewOrchestrationRegistry().Register("Waiter", func(ctx *engine.OrchestrationContext, in string) (string, error) {
			return ctx.WaitForEvent("go").Get()
		}).MustBuild()
		first := e.startWorker(orchs, nil, worker.Options{NodeID: "current"})
		ctx := context.Background()
		if err := e.client.Start(ctx, "pinned", "Waiter", ""); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "pinned running", func() bool {
			info, _ := e.client.GetInstanceInfo(ctx, "pinned")
			return info.Status == client.StateRunning && info.EnginePin == engine.Version
		})
		_ = first.Shutdown(ctx)
		// As if a newer engine (0.2.0) had started the execution: the
		// default range (up to this engine) excludes it.
		pinToNewerEngine(t, e, "pinned", false)

		opts := fastPoison
		opts.NodeID = "old-engine"
		e.startWorker(orchs, nil, opts)
		if err := e.client.RaiseEvent(ctx, "pinned", "go", "done"); err != nil {
			t.Fatal(err)
		}
		// Give the old worker many chances (several heartbeats and fetches).
		time.Sleep(500 * time.Millisecond)
		rec, err := e.store.Instance(ctx, "pinned")
		if err != nil || rec.Locked || rec.Attempts != 0 || rec.Status != "Running" {
			t.Fatalf("out-of-range execution was touched: %+v %v", rec, err)
		}
		wide := capability.MustRange("0.0.0", "0.2.0")
		e.startWorker(orchs, nil, worker.Options{NodeID: "new-engine", SupportedReplayVersions: &wide})
		if st := e.wait("pinned"); st.Output != "done" {
			t.Fatalf("%+v", st)
		}
	})
}

func TestClientFailsPromptlyWhenRedisIsDown(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 200 * time.Millisecond, MaxRetries: 1})
	defer rdb.Close()
	c := client.New(queue.New(rdb, queue.Options{}))
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	err := c.Start(ctx, "i", "Echo", "x")
	if err == nil || ctx.Err() != nil {
		t.Fatalf("Start with Redis down: err %v ctx %v", err, ctx.Err())
	}
	if _, err := c.Status(ctx, "i"); err == nil {
		t.Fatal("Status with Redis down returned no error")
	}
	wctx, wcancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer wcancel()
	if _, err := c.Wait(wctx, "i"); err == nil || !strings.Contains(err.Error(), "last error") {
		t.Fatalf("Wait with Redis down: %v, want the deadline with the last store error", err)
	}
	t.Logf("three calls failed in %s", time.Since(start))
}

func TestOversizedResultsFailClearly(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env) {
		big := strings.Repeat("x", engine.MaxPayloadBytes+1)
		orchs := engine.NewOrchestrationRegistry().
			Register("BigActivity", func(ctx *engine.OrchestrationContext, in string) (string, error) {
				_, err := ctx.ScheduleActivity("Big", "").Get()
				if err == nil {
					return "", errors.New("oversized result accepted")
				}
				return err.Error(), nil
			}).
			Register("BigOutput", func(ctx *engine.OrchestrationContext, in string) (string, error) {
				return big, nil
			}).MustBuild()
		acts := engine.NewActivityRegistry().Register("Big", func(ctx *engine.ActivityContext, in string) (string, error) {
			return big, nil
		}).MustBuild()
		e.startWorker(orchs, acts, worker.Options{})
		ctx := context.Background()
		for _, id := range []string{"BigActivity", "BigOutput"} {
			if err := e.client.Start(ctx, id, id, ""); err != nil {
				t.Fatal(err)
			}
		}
		if st := e.wait("BigActivity"); !strings.Contains(st.Output, "more than the limit") {
			t.Fatalf("%+v", st)
		}
		if st := e.wait("BigOutput"); st.State != client.StateFailed || !strings.Contains(st.Failure.Error(), "more than the limit") {
			t.Fatalf("%+v", st.Failure)
		}
	})
}

// TestPoisonedChildFailsItsParent: a sub-orchestration nobody can run ends
// as poison, and its parent learns it and fails with the same details.
func TestPoisonedChildFailsItsParent(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env) {
		orchs := engine.NewOrchestrationRegistry().Register("Parent", func(ctx *engine.OrchestrationContext, in string) (string, error) {
			_, err := ctx.ScheduleSubOrchestration("Missing", "").Get()
			return "caught: " + fmt.Sprint(err), nil
		}).MustBuild()
		e.startWorker(orchs, nil, fastPoison)
		if err := e.client.Start(context.Background(), "parent", "Parent", ""); err != nil {
			t.Fatal(err)
		}
		st := e.wait("parent")
		if st.State != client.StateFailed || !engine.IsPoison(st.Failure) || !strings.Contains(st.Failure.Error(), `"Missing"`) {
			t.Fatalf("parent: %+v", st.Failure)
		}
	})
}

// TestCancelGoesOnlyToOwnChild: when a child id collides with an unrelated
// running instance and the parent then ends, the unrelated instance is not
// cancelled.
func TestCancelGoesOnlyToOwnChild(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env) {
		orchs := engine.NewOrchestrationRegistry().
			Register("Waiter", func(ctx *engine.OrchestrationContext, in string) (string, error) {
				return ctx.WaitForEvent("go").Get()
			}).
			Register("Grabber", func(ctx *engine.OrchestrationContext, in string) (string, error) {
				ctx.ScheduleSubOrchestration("Waiter", "", engine.WithInstanceID("victim"))
				return "left at once", nil
			}).MustBuild()
		e.startWorker(orchs, nil, worker.Options{})
		ctx := context.Background()
		if err := e.client.Start(ctx, "victim", "Waiter", ""); err != nil {
			t.Fatal(err)
		}
		if err := e.client.Start(ctx, "grabber", "Grabber", ""); err != nil {
			t.Fatal(err)
		}
		e.wait("grabber")
		if err := e.client.RaiseEvent(ctx, "victim", "go", "still mine"); err != nil {
			t.Fatal(err)
		}
		if st := e.wait("victim"); st.State != client.StateCompleted || st.Output != "still mine" {
			t.Fatalf("victim: %+v %v", st, st.Failure)
		}
	})
}

// TestTimerFiresOnTimeOnAnIdleWorker: a timer created while the worker has
// nothing else to do fires when due, not after the worker's BlockTimeout.
func TestTimerFiresOnTimeOnAnIdleWorker(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env) {
		orchs := engine.NewOrchestrationRegistry().Register("Sleeper", func(ctx *engine.OrchestrationContext, in string) (string, error) {
			_, err := ctx.ScheduleTimer(200 * time.Millisecond).Get()
			return "woke", err
		}).MustBuild()
		e.startWorker(orchs, nil, worker.Options{BlockTimeout: time.Minute})
		begin := time.Now()
		if err := e.client.Start(context.Background(), "sleeper", "Sleeper", ""); err != nil {
			t.Fatal(err)
		}
		if st := e.wait("sleeper"); st.Output != "woke" {
			t.Fatalf("%+v", st)
		}
		// Not a speed assertion: without the wake-up it takes the full
		// minute-long BlockTimeout.
		if took := time.Since(begin); took > 20*time.Second {
			t.Fatalf("a 200ms timer took %s: the idle worker slept through it", took)
		}
	})
}
