package tests

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/internal/redistest"
	"github.com/duroworker/duroworker/session"
	"github.com/duroworker/duroworker/worker"
)

// sessionApp is an orchestration that runs 3 activities on a session, each
// after a message on the event queue "next" (so a test can act between them), and
// returns the workers that ran them.
func sessionApp() (*engine.OrchestrationRegistry, *engine.ActivityRegistry) {
	orchs := engine.NewOrchestrationRegistry().
		Register("OnSession", func(ctx *engine.OrchestrationContext, in string) (string, error) {
			var parts []string
			for i := 0; i < 3; i++ {
				if i > 0 {
					if _, err := ctx.DequeueEvent("next").Get(); err != nil {
						return "", err
					}
				}
				w, err := ctx.ScheduleActivity("Where", "", engine.WithSession(in)).Get()
				if err != nil {
					return "", err
				}
				parts = append(parts, w)
			}
			return strings.Join(parts, " "), nil
		}).
		Register("Burst", func(ctx *engine.OrchestrationContext, in string) (string, error) {
			// Ten activities of one session, then continue as new once: the
			// session survives it.
			seen := map[string]bool{}
			for i := 0; i < 10; i++ {
				w, err := ctx.ScheduleActivity("Where", "", engine.WithSession("burst-session")).Get()
				if err != nil {
					return "", err
				}
				seen[w] = true
			}
			out := fmt.Sprint(len(seen))
			if in == "" {
				return ctx.ContinueAsNew(out)
			}
			return in + "+" + out, nil
		}).
		Register("RetryOnSession", func(ctx *engine.OrchestrationContext, in string) (string, error) {
			return ctx.ScheduleActivity("FlakyWhere", "", engine.WithRetry(engine.NewRetryPolicy(4).WithBackoff(engine.NoBackoff())), engine.WithSession("retry-session")).Get()
		}).MustBuild()
	var mu sync.Mutex
	var seen []string
	acts := engine.NewActivityRegistry().
		Register("Where", func(ctx *engine.ActivityContext, in string) (string, error) {
			return ctx.WorkerID(), nil
		}).
		Register("FlakyWhere", func(ctx *engine.ActivityContext, in string) (string, error) {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, ctx.WorkerID())
			if len(seen) < 3 {
				return "", fmt.Errorf("flaky")
			}
			return strings.Join(seen, " "), nil
		}).MustBuild()
	return orchs, acts
}

func sessionOpts(node string) worker.Options {
	return worker.Options{NodeID: node, ActivityLockTimeout: 300 * time.Millisecond,
		Sessions: session.Options{LockTimeout: 300 * time.Millisecond, IdleTimeout: time.Minute}, NodeHeartbeat: 50 * time.Millisecond}
}

func TestSessionPinsActivitiesToOneWorker(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env) {
		orchs, acts := sessionApp()
		for _, n := range []string{"w1", "w2", "w3"} {
			e.startWorker(orchs, acts, sessionOpts(n))
		}
		ctx := context.Background()
		if err := e.client.Start(ctx, "burst", "Burst", ""); err != nil {
			t.Fatal(err)
		}
		if st := e.wait("burst"); st.Output != "1+1" {
			t.Fatalf("burst: %+v (want one worker per execution, the same across continue-as-new)", st)
		}
		if err := e.client.Start(ctx, "retry", "RetryOnSession", ""); err != nil {
			t.Fatal(err)
		}
		st := e.wait("retry")
		ws := strings.Fields(st.Output)
		if len(ws) != 3 || ws[0] != ws[1] || ws[1] != ws[2] {
			t.Fatalf("retry attempts ran on %v, want all on the session's owner", ws)
		}
		info, ok, err := e.store.Session(ctx, "retry-session")
		if err != nil || !ok || info.Owner != ws[0] {
			t.Fatalf("session owner %+v %v %v", info, ok, err)
		}
	})
}

// next lets the orchestration id run its next activity (an event-queue
// message, kept until the orchestration dequeues it).
func next(t *testing.T, e *env, id string) {
	t.Helper()
	if err := e.client.EnqueueEvent(context.Background(), id, "next", ""); err != nil {
		t.Fatal(err)
	}
}

// TestSessionMovesWhenItsOwnerDies: the owner stops without releasing
// anything (a crash); after its lease and liveness lapse, the next activity
// of the session runs on another worker.
func TestSessionMovesWhenItsOwnerDies(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env) {
		orchs, acts := sessionApp()
		ctx := context.Background()
		crashCtx, crash := context.WithCancel(ctx)
		opts := sessionOpts("doomed")
		opts.Logger = testLogger()
		doomed, err := worker.New(e.store, orchs, acts, opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := doomed.Start(crashCtx); err != nil {
			t.Fatal(err)
		}
		if err := e.client.Start(ctx, "s", "OnSession", "sess-1"); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "session claimed", func() bool {
			info, ok, _ := e.store.Session(ctx, "sess-1")
			return ok && info.Owner == "doomed"
		})
		crash() // fetchers and heartbeats stop; nothing is released
		e.startWorker(orchs, acts, sessionOpts("survivor"))
		next(t, e, "s")
		time.Sleep(100 * time.Millisecond)
		next(t, e, "s")
		st := e.wait("s")
		if !strings.HasPrefix(st.Output, "doomed ") || strings.Count(st.Output, "survivor") != 2 {
			t.Fatalf("activities ran on %q, want doomed then survivor twice", st.Output)
		}
	})
}

// TestGracefulShutdownReleasesSessions: a node that shuts down gracefully
// gives its sessions up at once, long before their lease would lapse.
func TestGracefulShutdownReleasesSessions(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env) {
		orchs, acts := sessionApp()
		ctx := context.Background()
		opts := sessionOpts("old")
		opts.Sessions.LockTimeout = time.Hour // only a release can move the session soon
		old := e.startWorker(orchs, acts, opts)
		if err := e.client.Start(ctx, "s", "OnSession", "sess-2"); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "session claimed", func() bool {
			info, ok, _ := e.store.Session(ctx, "sess-2")
			return ok && info.Owner == "old"
		})
		if err := old.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := e.store.Session(ctx, "sess-2"); ok {
			t.Fatal("session still pinned after a graceful shutdown")
		}
		e.startWorker(orchs, acts, sessionOpts("upgraded"))
		next(t, e, "s")
		next(t, e, "s")
		if st := e.wait("s"); st.Output != "old upgraded upgraded" {
			t.Fatalf("%+v", st)
		}
	})
}

// TestSessionCapacityAndIdleUnpin: a worker holds at most
// Sessions.MaxSessions sessions; a session idle for Sessions.IdleTimeout is
// unpinned.
func TestSessionCapacityAndIdleUnpin(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env) {
		orchs, acts := sessionApp()
		ctx := context.Background()
		for _, n := range []string{"a", "b"} {
			opts := sessionOpts(n)
			opts.Sessions.MaxSessions = 1
			opts.Sessions.IdleTimeout = 500 * time.Millisecond
			e.startWorker(orchs, acts, opts)
		}
		for _, s := range []string{"x", "y"} {
			if err := e.client.Start(ctx, "cap-"+s, "OnSession", "sess-"+s); err != nil {
				t.Fatal(err)
			}
		}
		eventually(t, 10*time.Second, "both sessions claimed", func() bool {
			x, okx, _ := e.store.Session(ctx, "sess-x")
			y, oky, _ := e.store.Session(ctx, "sess-y")
			return okx && oky && x.Owner != y.Owner
		})
		eventually(t, 10*time.Second, "idle sessions unpinned", func() bool {
			_, okx, _ := e.store.Session(ctx, "sess-x")
			_, oky, _ := e.store.Session(ctx, "sess-y")
			return !okx && !oky
		})
	})
}

// TestSessionActivityUnregisteredOnOwnerPoisons is the seed's last section:
// during a rolling upgrade, a session activity the owning worker does not
// have is backed off and then poisoned; it does not fail over.
func TestSessionActivityUnregisteredOnOwnerPoisons(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env) {
		orchs := engine.NewOrchestrationRegistry().Register("Upgrade", func(ctx *engine.OrchestrationContext, in string) (string, error) {
			if _, err := ctx.ScheduleActivity("Old", "", engine.WithSession("pinned")).Get(); err != nil {
				return "", err
			}
			return ctx.ScheduleActivity("New", "", engine.WithSession("pinned")).Get()
		}).MustBuild()
		old := engine.NewActivityRegistry().Register("Old", func(ctx *engine.ActivityContext, in string) (string, error) { return "old", nil }).MustBuild()
		opts := sessionOpts("owner")
		opts.MaxAttempts = 3
		opts.UnregisteredBackoffBase, opts.UnregisteredBackoffMax = 10*time.Millisecond, 30*time.Millisecond
		e.startWorker(orchs, old, opts)
		ctx := context.Background()
		if err := e.client.Start(ctx, "u", "Upgrade", ""); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "session claimed by the old node", func() bool {
			info, ok, _ := e.store.Session(ctx, "pinned")
			return ok && info.Owner == "owner"
		})
		// An upgraded node with "New" runs too, but the session is pinned.
		upgraded := engine.NewActivityRegistry().
			Register("Old", func(ctx *engine.ActivityContext, in string) (string, error) { return "old", nil }).
			Register("New", func(ctx *engine.ActivityContext, in string) (string, error) { return "new", nil }).MustBuild()
		e.startWorker(nil, upgraded, sessionOpts("upgraded"))
		st := e.wait("u")
		if st.State != client.StateFailed || !engine.IsPoison(st.Failure) || !strings.Contains(st.Failure.Error(), `activity "New" is not registered on worker owner`) {
			t.Fatalf("%+v %v", st, st.Failure)
		}
	})
}

func TestSessionIdleTimeoutMustExceedActivityLock(t *testing.T) {
	_, err := worker.New(newEnv(t, nil, true).store, nil, nil, worker.Options{
		ActivityLockTimeout: time.Minute, Sessions: session.Options{IdleTimeout: 30 * time.Second}})
	if err == nil || !strings.Contains(err.Error(), "must exceed ActivityLockTimeout") {
		t.Fatalf("err = %v", err)
	}
}

// TestWorkerAtSessionCapacityDoesNotSpin: a session activity the worker may
// not take (it holds Sessions.MaxSessions sessions) must not make it fetch
// in a tight loop.
func TestWorkerAtSessionCapacityDoesNotSpin(t *testing.T) {
	if testing.Short() {
		t.Skip("needs redis-server")
	}
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	e := newEnv(t, rdb, true)
	orchs, acts := sessionApp()
	opts := sessionOpts("full")
	opts.Sessions.MaxSessions = 1
	e.startWorker(orchs, acts, opts)
	ctx := context.Background()
	for _, s := range []string{"one", "two"} {
		if err := e.client.Start(ctx, "cap-"+s, "OnSession", "sess-"+s); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, "one session held, one waiting", func() bool {
		// waiting: an entry of a:Where's stream, or parked in its delayed set
		n, _ := rdb.XLen(ctx, e.store.Keys().WorkStreamKey("a:Where")).Result()
		d, _ := rdb.ZCard(ctx, e.store.Keys().WorkDelayKey("a:Where")).Result()
		return n+d == 1
	})
	if err := rdb.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	scripts := scriptCalls(t, rdb)
	// The test's 50 ms node heartbeat and 100 ms session renewal account for
	// about 70 script calls a second; a fetch loop spinning on the waiting
	// item would add thousands.
	t.Logf("worker at session capacity ran %d scripts in 1s", scripts)
	if scripts > 200 {
		t.Fatalf("worker at session capacity ran %d scripts in 1s: it spins", scripts)
	}
}

// TestRestartedNodeWithTheSameIDKeepsItsSessions: a node that crashes and
// comes back with the same NodeID (a StatefulSet pod) before its session
// lease lapses gets the session's next activity, not another node.
func TestRestartedNodeWithTheSameIDKeepsItsSessions(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env) {
		orchs, acts := sessionApp()
		ctx := context.Background()
		opts := sessionOpts("stable-0")
		opts.Sessions.LockTimeout = time.Minute // the restart happens well within the lease
		opts.Logger = testLogger()
		crashCtx, crash := context.WithCancel(ctx)
		first, err := worker.New(e.store, orchs, acts, opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := first.Start(crashCtx); err != nil {
			t.Fatal(err)
		}
		if err := e.client.Start(ctx, "s", "OnSession", "sess-stable"); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "session claimed", func() bool {
			info, ok, _ := e.store.Session(ctx, "sess-stable")
			return ok && info.Owner == "stable-0"
		})
		crash() // no release
		e.startWorker(orchs, acts, sessionOpts("other"))
		e.startWorker(orchs, acts, opts) // the same node id again
		next(t, e, "s")
		next(t, e, "s")
		if st := e.wait("s"); st.Output != "stable-0 stable-0 stable-0" {
			t.Fatalf("activities ran on %q, want all on stable-0", st.Output)
		}
	})
}
