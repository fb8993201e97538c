package tests

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/worker"
)

func TestSubOrchestrations(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env) {
		orchs := engine.NewOrchestrationRegistry().
			Register("Parent", func(ctx *engine.OrchestrationContext, in string) (string, error) {
				// Children across continue-as-new generations must not collide.
				auto, err := ctx.ScheduleSubOrchestration("Child", in).Get()
				if err != nil {
					return "", err
				}
				if in == "gen1" {
					return ctx.ContinueAsNew("gen2")
				}
				named, err := ctx.ScheduleSubOrchestration("Child", "named", engine.WithInstanceID("fixed-child")).Get()
				if err != nil {
					return "", err
				}
				_, collideErr := ctx.ScheduleSubOrchestration("Child", "again", engine.WithInstanceID("fixed-child")).Get()
				_, failErr := ctx.ScheduleSubOrchestration("Failing", "").Get()
				return fmt.Sprintf("%s|%s|collision:%v|fail:%v", auto, named, collideErr != nil, failErr), nil
			}).
			Register("Child", func(ctx *engine.OrchestrationContext, in string) (string, error) {
				return ctx.ScheduleActivity("Echo", "child:"+in).Get()
			}).
			Register("Failing", func(ctx *engine.OrchestrationContext, in string) (string, error) {
				return "", errors.New("child broke")
			}).MustBuild()
		_, acts := echoRegistries()
		e.startWorker(orchs, acts, worker.Options{})
		ctx := context.Background()
		if err := e.client.Start(ctx, "parent", "Parent", "gen1"); err != nil {
			t.Fatal(err)
		}
		st := e.wait("parent")
		want := "child:gen2|child:named|collision:true|fail:child broke"
		if st.State != client.StateCompleted || st.Output != want {
			t.Fatalf("status %+v, want output %q", st, want)
		}
		// Children carry a durable parent link; generated ids are
		// execution-qualified.
		for _, id := range []string{"parent::sub::1.2", "parent::sub::2.2", "fixed-child"} {
			info, err := e.client.GetInstanceInfo(ctx, id)
			if err != nil || info.ParentInstanceID != "parent" || info.Status != client.StateCompleted {
				t.Fatalf("child %s: %+v %v", id, info, err)
			}
		}
	})
}

func TestDetachedOrchestration(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env) {
		orchs := engine.NewOrchestrationRegistry().
			Register("Launcher", func(ctx *engine.OrchestrationContext, in string) (string, error) {
				ctx.ScheduleSubOrchestration("Echo", "detached", engine.Detached(), engine.WithInstanceID("launched-"+in))
				return "launched", nil
			}).
			Register("Echo", func(ctx *engine.OrchestrationContext, in string) (string, error) {
				return ctx.ScheduleActivity("Echo", in).Get()
			}).MustBuild()
		_, acts := echoRegistries()
		e.startWorker(orchs, acts, worker.Options{})
		if err := e.client.Start(context.Background(), "launcher", "Launcher", "x"); err != nil {
			t.Fatal(err)
		}
		if st := e.wait("launcher"); st.Output != "launched" {
			t.Fatalf("%+v", st)
		}
		st := e.wait("launched-x")
		info, _ := e.client.GetInstanceInfo(context.Background(), "launched-x")
		if st.Output != "detached" || info.ParentInstanceID != "" {
			t.Fatalf("detached: %+v parent %q", st, info.ParentInstanceID)
		}
	})
}

// TestEventQueueAcrossContinueAsNew is upstream's config-reload sample:
// messages enqueued at any time are consumed in order, none lost across
// continue-as-new.
func TestEventQueueAcrossContinueAsNew(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env) {
		orchs := engine.NewOrchestrationRegistry().Register("Reloader", func(ctx *engine.OrchestrationContext, in string) (string, error) {
			cfg, err := ctx.DequeueEvent("config").Get()
			if err != nil {
				return "", err
			}
			seen := in + cfg
			if cfg == "stop" {
				return seen, nil
			}
			return ctx.ContinueAsNew(seen + ",")
		}).MustBuild()
		e.startWorker(orchs, nil, worker.Options{})
		ctx := context.Background()
		if err := e.client.Start(ctx, "reloader", "Reloader", ""); err != nil {
			t.Fatal(err)
		}
		for _, v := range []string{"a", "b", "c", "d", "stop"} {
			if err := e.client.EnqueueEvent(ctx, "reloader", "config", v); err != nil {
				t.Fatal(err)
			}
		}
		if st := e.wait("reloader"); st.Output != "a,b,c,d,stop" {
			t.Fatalf("%+v", st)
		}
	})
}

func TestCancelPropagatesAndStopsActivities(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env) {
		var cancelled atomic.Int32
		started := make(chan struct{}, 4)
		orchs := engine.NewOrchestrationRegistry().
			Register("Parent", func(ctx *engine.OrchestrationContext, in string) (string, error) {
				act := ctx.ScheduleActivity("Block", "parent")
				child := ctx.ScheduleSubOrchestration("Child", "", engine.WithInstanceID("cancel-child"))
				ctx.Join(act, child)
				return "unreachable", nil
			}).
			Register("Child", func(ctx *engine.OrchestrationContext, in string) (string, error) {
				return ctx.ScheduleActivity("Block", "child").Get()
			}).MustBuild()
		acts := engine.NewActivityRegistry().Register("Block", func(ctx *engine.ActivityContext, in string) (string, error) {
			started <- struct{}{}
			<-ctx.Done() // until the lock is taken away
			cancelled.Add(1)
			return "", ctx.Err()
		}).MustBuild()
		e.startWorker(orchs, acts, worker.Options{ActivityLockTimeout: 300 * time.Millisecond})
		ctx := context.Background()
		if err := e.client.Start(ctx, "to-cancel", "Parent", ""); err != nil {
			t.Fatal(err)
		}
		<-started
		<-started
		if err := e.client.Cancel(ctx, "to-cancel", "no longer needed"); err != nil {
			t.Fatal(err)
		}
		st := e.wait("to-cancel")
		if st.State != client.StateFailed || st.Failure.Kind != engine.KindCancelled || st.Failure.Error() != "cancelled: no longer needed" {
			t.Fatalf("parent %+v", st.Failure)
		}
		cst := e.wait("cancel-child")
		if cst.State != client.StateFailed || cst.Failure.Kind != engine.KindCancelled || !strings.Contains(cst.Failure.Error(), "no longer needed") {
			t.Fatalf("child %+v", cst.Failure)
		}
		eventually(t, 10*time.Second, "both activities cancelled", func() bool { return cancelled.Load() == 2 })
		if err := e.client.Cancel(ctx, "to-cancel", "again"); !errors.Is(err, client.ErrInstanceEnded) {
			t.Fatalf("cancel of an ended instance: %v", err)
		}
	})
}

// TestApprovalRacesEventAgainstTimer is upstream's approval sample: the
// losing branch of the select is cancelled (the activity's context too).
func TestApprovalRacesEventAgainstTimer(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env) {
		loserStarted, loserStopped := make(chan struct{}, 1), make(chan struct{}, 1)
		orchs := engine.NewOrchestrationRegistry().Register("Approval", func(ctx *engine.OrchestrationContext, in string) (string, error) {
			reminder := ctx.ScheduleActivity("Remind", in)
			approval := ctx.WaitForEvent("approve")
			timeout := ctx.ScheduleTimer(10 * time.Second)
			switch ctx.Select(approval, timeout, reminder) {
			case 0:
				v, _ := approval.Get()
				return "approved by " + v, nil
			case 1:
				return "timed out", nil
			}
			return "reminder finished first", nil
		}).MustBuild()
		acts := engine.NewActivityRegistry().Register("Remind", func(ctx *engine.ActivityContext, in string) (string, error) {
			loserStarted <- struct{}{}
			<-ctx.Done()
			loserStopped <- struct{}{}
			return "", ctx.Err()
		}).MustBuild()
		e.startWorker(orchs, acts, worker.Options{ActivityLockTimeout: 300 * time.Millisecond})
		ctx := context.Background()
		if err := e.client.Start(ctx, "approval", "Approval", "ops"); err != nil {
			t.Fatal(err)
		}
		// The event comes once the reminder runs: a reminder still queued
		// when the orchestration ends is dropped and never runs.
		select {
		case <-loserStarted:
		case <-time.After(10 * time.Second):
			t.Fatal("the reminder activity never started")
		}
		if err := e.client.RaiseEvent(ctx, "approval", "approve", "alice"); err != nil {
			t.Fatal(err)
		}
		if st := e.wait("approval"); st.Output != "approved by alice" {
			t.Fatalf("%+v", st)
		}
		select {
		case <-loserStopped:
		case <-time.After(10 * time.Second):
			t.Fatal("the losing activity's context was never cancelled")
		}
	})
}

func TestCustomStatusAndWaitForChange(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env) {
		orchs := engine.NewOrchestrationRegistry().Register("Progress", func(ctx *engine.OrchestrationContext, in string) (string, error) {
			for i := 1; i <= 3; i++ {
				if err := ctx.SetCustomStatus(fmt.Sprintf("step %d/3", i)); err != nil {
					return "", err
				}
				if _, err := ctx.WaitForEvent("next").Get(); err != nil {
					return "", err
				}
			}
			if in == "again" {
				s, _ := ctx.CustomStatus()
				return "kept " + s, nil
			}
			return ctx.ContinueAsNew("again")
		}).MustBuild()
		e.startWorker(orchs, nil, worker.Options{})
		ctx := context.Background()
		if err := e.client.Start(ctx, "progress", "Progress", ""); err != nil {
			t.Fatal(err)
		}
		var seen int64
		for i := 0; i < 6; i++ {
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			st, err := e.client.WaitForStatusChange(wctx, "progress", seen, 50*time.Millisecond)
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("step %d/3", i%3+1); st.CustomStatus != want || st.CustomStatusVersion <= seen {
				t.Fatalf("round %d: %+v, want %q", i, st, want)
			}
			seen = st.CustomStatusVersion
			if err := e.client.RaiseEvent(ctx, "progress", "next", ""); err != nil {
				t.Fatal(err)
			}
		}
		if st := e.wait("progress"); st.Output != "kept step 3/3" || st.CustomStatus != "step 3/3" {
			t.Fatalf("%+v", st)
		}
	})
}

// TestKeyValueStateAndCrossInstanceRead is upstream's key-value
// request/response sample: one instance publishes state that clients and
// another instance read.
func TestKeyValueStateAndCrossInstanceRead(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env) {
		orchs := engine.NewOrchestrationRegistry().
			Register("Counter", func(ctx *engine.OrchestrationContext, in string) (string, error) {
				n, _, _ := engine.GetKVTyped[int](ctx, "count")
				if err := engine.SetKVTyped(ctx, "count", n+1); err != nil {
					return "", err
				}
				if _, err := ctx.WaitForEvent("go").Get(); err != nil {
					return "", err
				}
				if n+1 < 3 {
					return ctx.ContinueAsNew("")
				}
				return fmt.Sprint(n + 1), nil
			}).
			Register("Reader", func(ctx *engine.OrchestrationContext, in string) (string, error) {
				got, err := ctx.GetKVFromInstance(in, "count").Get()
				if err != nil {
					return "", err
				}
				missing, err := ctx.GetKVFromInstance("nobody", "count").Get()
				if err != nil {
					return "", err
				}
				return fmt.Sprintf("%s/%v/%v", got.Value, got.Found, missing.Found), nil
			}).MustBuild()
		e.startWorker(orchs, engine.NewActivityRegistry().MustBuild(), worker.Options{})
		ctx := context.Background()
		if err := e.client.Start(ctx, "counter", "Counter", ""); err != nil {
			t.Fatal(err)
		}
		for want := 1; want <= 3; want++ {
			eventually(t, 10*time.Second, fmt.Sprint("count ", want), func() bool {
				v, ok, err := e.client.GetKV(ctx, "counter", "count")
				return err == nil && ok && v == fmt.Sprint(want)
			})
			if want == 2 {
				if err := e.client.Start(ctx, "reader", "Reader", "counter"); err != nil {
					t.Fatal(err)
				}
				if st := e.wait("reader"); st.Output != "2/true/false" {
					t.Fatalf("reader %+v", st)
				}
			}
			if err := e.client.RaiseEvent(ctx, "counter", "go", ""); err != nil {
				t.Fatal(err)
			}
		}
		if st := e.wait("counter"); st.Output != "3" {
			t.Fatalf("%+v", st)
		}
		all, err := e.client.GetKVAll(ctx, "counter")
		if err != nil || all["count"] != "3" {
			t.Fatalf("all %v %v", all, err)
		}
	})
}

// TestCancelledActivityThatIgnoresItsContextFreesItsSlot: an activity that
// ignores cancellation keeps its worker slot only for the grace period.
func TestCancelledActivityThatIgnoresItsContextFreesItsSlot(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env) {
		release := make(chan struct{})
		defer close(release)
		orchs := engine.NewOrchestrationRegistry().
			Register("Stubborn", func(ctx *engine.OrchestrationContext, in string) (string, error) {
				return ctx.ScheduleActivity("Stubborn", "").Get()
			}).
			Register("Quick", func(ctx *engine.OrchestrationContext, in string) (string, error) {
				return ctx.ScheduleActivity("Quick", "").Get()
			}).MustBuild()
		started := make(chan struct{}, 1)
		acts := engine.NewActivityRegistry().
			Register("Stubborn", func(ctx *engine.ActivityContext, in string) (string, error) {
				started <- struct{}{}
				<-release // ignores ctx
				return "too late", nil
			}).
			Register("Quick", func(ctx *engine.ActivityContext, in string) (string, error) { return "quick", nil }).MustBuild()
		// One activity slot: the stubborn activity must give it up.
		e.startWorker(orchs, acts, worker.Options{ActivityConcurrency: 1, ActivityLockTimeout: 300 * time.Millisecond,
			ActivityCancellationGrace: 200 * time.Millisecond})
		ctx := context.Background()
		if err := e.client.Start(ctx, "stubborn", "Stubborn", ""); err != nil {
			t.Fatal(err)
		}
		<-started
		if err := e.client.Cancel(ctx, "stubborn", "stop"); err != nil {
			t.Fatal(err)
		}
		e.wait("stubborn")
		if err := e.client.Start(ctx, "quick", "Quick", ""); err != nil {
			t.Fatal(err)
		}
		if st := e.wait("quick"); st.Output != "quick" {
			t.Fatalf("%+v", st)
		}
	})
}
