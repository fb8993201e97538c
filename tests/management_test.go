package tests

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/worker"
)

// TestEternalOrchestrationPrunesItself is upstream's self-pruning eternal
// orchestration: each execution prunes the ones before it through an
// activity that holds a client, then continues as new.
func TestEternalOrchestrationPrunesItself(t *testing.T) {
	const generations = 6
	forEachSetup(t, func(t *testing.T, e *env) {
		orchs := engine.NewOrchestrationRegistry().Register("Eternal", func(ctx *engine.OrchestrationContext, in string) (string, error) {
			n, err := strconv.Atoi(in)
			if err != nil {
				return "", err
			}
			pruned, err := ctx.ScheduleActivity("PruneSelf", ctx.InstanceID()).Get()
			if err != nil {
				return "", err
			}
			if err := ctx.SetKV("pruned-"+in, pruned); err != nil {
				return "", err
			}
			if n < generations {
				return ctx.ContinueAsNew(strconv.Itoa(n + 1))
			}
			return "done", nil
		}).MustBuild()
		acts := engine.NewActivityRegistry().Register("PruneSelf", func(ctx *engine.ActivityContext, id string) (string, error) {
			res, err := e.client.PruneExecutions(ctx, id, client.PruneOptions{KeepLast: 1})
			if err != nil {
				return "", err
			}
			return strconv.Itoa(res.Executions), nil
		}).MustBuild()
		e.startWorker(orchs, acts, worker.Options{})
		ctx := context.Background()
		if err := e.client.Start(ctx, "eternal", "Eternal", "0"); err != nil {
			t.Fatal(err)
		}
		if st := e.wait("eternal"); st.State != client.StateCompleted || st.Output != "done" {
			t.Fatalf("status %+v", st)
		}
		// Execution 1 had nothing to prune; every later one pruned exactly
		// the one before it.
		kv, err := e.client.GetKVAll(ctx, "eternal")
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for i := 0; i <= generations; i++ {
			n, _ := strconv.Atoi(kv["pruned-"+strconv.Itoa(i)])
			total += n
		}
		if kv["pruned-0"] != "0" || total != generations {
			t.Errorf("pruned per execution %v, total %d, want %d", kv, total, generations)
		}
		execs, err := e.client.ListExecutions(ctx, "eternal")
		if err != nil {
			t.Fatal(err)
		}
		if len(execs) != 1 || execs[0].ExecutionID != generations+1 || execs[0].Status != "Completed" ||
			execs[0].Output != "done" || execs[0].EndedAt.Before(execs[0].StartedAt) {
			t.Fatalf("executions %+v, want only the last one, completed", execs)
		}
		hist, err := e.client.ReadHistory(ctx, "eternal", 0)
		if err != nil || len(hist) != execs[0].EventCount || hist[len(hist)-1].Kind != client.EventOrchestrationCompleted {
			t.Fatalf("current history: %d events (record %d), %v", len(hist), execs[0].EventCount, err)
		}
		if _, err := e.client.ReadHistory(ctx, "eternal", 1); !errors.Is(err, client.ErrExecutionNotFound) {
			t.Errorf("pruned history: err = %v, want ErrExecutionNotFound", err)
		}
		if _, err := e.client.ReadHistory(ctx, "eternal", generations+2); !errors.Is(err, client.ErrExecutionNotFound) {
			t.Errorf("future history: err = %v, want ErrExecutionNotFound", err)
		}
		m, err := e.client.GetSystemMetrics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := client.SystemMetrics{Completed: 1, Instances: 1, Executions: 1, Events: int64(len(hist))}
		if m != want {
			t.Errorf("metrics %+v, want %+v", m, want)
		}
	})
}

// mgmtActivities registers Echo, which returns its input.
func mgmtActivities() *engine.ActivityRegistry {
	return engine.NewActivityRegistry().Register("Echo", func(ctx *engine.ActivityContext, in string) (string, error) {
		return in, nil
	}).MustBuild()
}

// waitSubscribed waits until the current execution of id has subscribed to
// an external event (raised events that arrive earlier are dropped).
func (e *env) waitSubscribed(id string) {
	e.t.Helper()
	eventually(e.t, 10*time.Second, id+" to wait for an event", func() bool {
		h, err := e.client.ReadHistory(context.Background(), id, 0)
		return err == nil && slices.ContainsFunc(h, func(ev client.HistoryEvent) bool { return ev.Kind == client.EventExternalSubscribed })
	})
}

// waitChild waits for a sub-orchestration to be created, then to end.
func (e *env) waitChild(id string) client.Status {
	e.t.Helper()
	eventually(e.t, 10*time.Second, id+" to be created", func() bool {
		st, err := e.client.Status(context.Background(), id)
		return err == nil && st.State != client.StateNotFound
	})
	return e.wait(id)
}

// parentWithChildren registers Parent, which starts two children (one of
// which starts a grandchild) and then waits for the event "finish".
func parentWithChildren() *engine.OrchestrationRegistry {
	return engine.NewOrchestrationRegistry().
		Register("Parent", func(ctx *engine.OrchestrationContext, in string) (string, error) {
			a := ctx.ScheduleSubOrchestration("Child", "grand", engine.WithInstanceID(ctx.InstanceID()+"-a"))
			b := ctx.ScheduleSubOrchestration("Child", "", engine.WithInstanceID(ctx.InstanceID()+"-b"))
			ctx.Join(a, b)
			if _, err := a.Get(); err != nil {
				return "", err
			}
			if _, err := ctx.WaitForEvent("finish").Get(); err != nil {
				return "", err
			}
			return "parent done", nil
		}).
		Register("Child", func(ctx *engine.OrchestrationContext, in string) (string, error) {
			if in == "grand" {
				return ctx.ScheduleSubOrchestration("Child", "", engine.WithInstanceID(ctx.InstanceID()+"-x")).Get()
			}
			return ctx.ScheduleActivity("Echo", "child").Get()
		}).MustBuild()
}

func TestManagementTreeListAndDelete(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env) {
		acts := mgmtActivities()
		e.startWorker(parentWithChildren(), acts, worker.Options{})
		ctx := context.Background()
		if err := e.client.Start(ctx, "p", "Parent", ""); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"p-a", "p-b", "p-a-x"} {
			if st := e.waitChild(id); st.State != client.StateCompleted {
				t.Fatalf("%s: %+v", id, st)
			}
		}

		tree, err := e.client.GetInstanceTree(ctx, "p")
		if err != nil {
			t.Fatal(err)
		}
		if want := (client.InstanceTree{RootID: "p", AllIDs: []string{"p", "p-a", "p-b", "p-a-x"}}); !slices.Equal(tree.AllIDs, want.AllIDs) || tree.RootID != "p" {
			t.Fatalf("tree %+v, want %+v", tree, want)
		}
		if _, err := e.client.GetInstanceTree(ctx, "nope"); !errors.Is(err, client.ErrInstanceNotFound) {
			t.Errorf("tree of a missing instance: %v", err)
		}

		page, err := e.client.ListInstances(ctx, client.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, info := range page.Instances {
			ids = append(ids, info.InstanceID)
		}
		if page.NextOffset != -1 || len(ids) != 4 || ids[0] != "p" || page.Instances[0].OrchestrationName != "Parent" {
			t.Fatalf("list all: %v next %d", ids, page.NextOffset)
		}
		running, err := e.client.ListInstances(ctx, client.ListOptions{Status: client.StateRunning})
		if err != nil || len(running.Instances) != 1 || running.Instances[0].InstanceID != "p" {
			t.Fatalf("list running: %+v %v", running, err)
		}
		completed, err := e.client.ListInstances(ctx, client.ListOptions{Status: client.StateCompleted, Limit: 2})
		if err != nil || len(completed.Instances) != 2 || completed.Instances[0].ParentInstanceID != "p" || completed.NextOffset < 0 {
			t.Fatalf("list completed, page 1: %+v %v", completed, err)
		}
		rest, err := e.client.ListInstances(ctx, client.ListOptions{Status: client.StateCompleted, Offset: completed.NextOffset})
		if err != nil || len(rest.Instances) != 1 || rest.NextOffset != -1 {
			t.Fatalf("list completed, page 2: %+v %v", rest, err)
		}
		if _, err := e.client.ListInstances(ctx, client.ListOptions{Status: "ContinuedAsNew"}); !errors.Is(err, client.ErrInvalidInput) {
			t.Errorf("list by an unknown status: %v", err)
		}

		if _, err := e.client.DeleteInstance(ctx, "p-a", true); !errors.Is(err, client.ErrCannotDeleteSubOrchestration) {
			t.Fatalf("delete a child: %v", err)
		}
		if _, err := e.client.DeleteInstance(ctx, "p", false); !errors.Is(err, client.ErrInstanceRunning) {
			t.Fatalf("delete the running parent: %v", err)
		}
		e.waitSubscribed("p")
		if err := e.client.RaiseEvent(ctx, "p", "finish", ""); err != nil {
			t.Fatal(err)
		}
		if st := e.wait("p"); st.Output != "parent done" {
			t.Fatalf("parent: %+v", st)
		}
		res, err := e.client.DeleteInstance(ctx, "p", false)
		if err != nil {
			t.Fatal(err)
		}
		if res.Instances != 4 || res.Executions != 4 || res.Events == 0 {
			t.Fatalf("delete result %+v", res)
		}
		for _, id := range tree.AllIDs {
			if st, err := e.client.Status(ctx, id); err != nil || st.State != client.StateNotFound {
				t.Errorf("%s after delete: %+v %v", id, st, err)
			}
		}
		if m, err := e.client.GetSystemMetrics(ctx); err != nil || m != (client.SystemMetrics{}) {
			t.Errorf("metrics after delete: %+v %v", m, err)
		}
		// The id is free again.
		if err := e.client.Start(ctx, "p", "Child", ""); err != nil {
			t.Fatal(err)
		}
		if st := e.wait("p"); st.Output != "child" {
			t.Fatalf("reused id: %+v", st)
		}
	})
}

func TestForceDeleteStopsARunningTree(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env) {
		started := make(chan struct{}, 1)
		cancelled := make(chan struct{}, 1)
		orchs := engine.NewOrchestrationRegistry().Register("Blocked", func(ctx *engine.OrchestrationContext, in string) (string, error) {
			return ctx.ScheduleActivity("Block", "").Get()
		}).MustBuild()
		acts := engine.NewActivityRegistry().Register("Block", func(ctx *engine.ActivityContext, in string) (string, error) {
			started <- struct{}{}
			<-ctx.Done() // until the lock is taken away
			cancelled <- struct{}{}
			return "", ctx.Err()
		}).MustBuild()
		e.startWorker(orchs, acts, worker.Options{ActivityLockTimeout: 300 * time.Millisecond})
		ctx := context.Background()
		if err := e.client.Start(ctx, "blocked", "Blocked", ""); err != nil {
			t.Fatal(err)
		}
		<-started
		res, err := e.client.DeleteInstance(ctx, "blocked", true)
		if err != nil {
			t.Fatal(err)
		}
		if res.Instances != 1 || res.QueueMessages != 1 {
			t.Fatalf("delete result %+v, want the instance and its activity", res)
		}
		select {
		case <-cancelled:
		case <-time.After(10 * time.Second):
			t.Fatal("the activity of the deleted instance was not cancelled")
		}
		if st, _ := e.client.Status(ctx, "blocked"); st.State != client.StateNotFound {
			t.Fatalf("status after delete: %+v", st)
		}
		if m, err := e.client.GetSystemMetrics(ctx); err != nil || m != (client.SystemMetrics{}) {
			t.Errorf("metrics after delete: %+v %v", m, err)
		}
	})
}

func TestBulkDeleteEndToEnd(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env) {
		acts := mgmtActivities()
		e.startWorker(parentWithChildren(), acts, worker.Options{})
		ctx := context.Background()
		for i := range 3 {
			id := fmt.Sprintf("done-%d", i)
			if err := e.client.Start(ctx, id, "Child", ""); err != nil {
				t.Fatal(err)
			}
			e.wait(id)
		}
		if err := e.client.Start(ctx, "tree", "Parent", ""); err != nil {
			t.Fatal(err)
		}
		e.waitChild("tree-b")
		// Sub-orchestrations and running roots are skipped.
		res, err := e.client.DeleteInstances(ctx, client.BulkDeleteFilter{InstanceIDs: []string{"tree", "tree-b", "done-0"}})
		if err != nil || res.Instances != 1 {
			t.Fatalf("bulk by ids: %+v %v", res, err)
		}
		e.waitSubscribed("tree")
		if err := e.client.RaiseEvent(ctx, "tree", "finish", ""); err != nil {
			t.Fatal(err)
		}
		e.wait("tree")
		res, err = e.client.DeleteInstances(ctx, client.BulkDeleteFilter{Limit: 1})
		if err != nil || res.Instances != 1 {
			t.Fatalf("bulk with limit 1: %+v %v", res, err)
		}
		res, err = e.client.DeleteInstances(ctx, client.BulkDeleteFilter{CompletedBefore: time.Now().Add(time.Minute)})
		if err != nil || res.Instances != 5 {
			t.Fatalf("bulk of the rest: %+v %v", res, err)
		}
		if m, err := e.client.GetSystemMetrics(ctx); err != nil || m != (client.SystemMetrics{}) {
			t.Errorf("metrics after bulk delete: %+v %v", m, err)
		}
	})
}

func TestSystemMetricsAfterAMixedRun(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env) {
		orchs := engine.NewOrchestrationRegistry().
			Register("Work", func(ctx *engine.OrchestrationContext, in string) (string, error) {
				out, err := ctx.ScheduleActivity("Echo", in).Get()
				if err != nil {
					return "", err
				}
				if in == "fail" {
					return "", errors.New("asked to fail")
				}
				if n, err := strconv.Atoi(in); err == nil && n > 0 {
					return ctx.ContinueAsNew(strconv.Itoa(n - 1))
				}
				return out, nil
			}).
			Register("Waiter", func(ctx *engine.OrchestrationContext, in string) (string, error) {
				return ctx.WaitForEvent("never").Get()
			}).MustBuild()
		acts := mgmtActivities()
		e.startWorker(orchs, acts, worker.Options{})
		ctx := context.Background()
		inputs := map[string]string{"ok-1": "a", "ok-2": "b", "can": "2", "bad-1": "fail", "bad-2": "fail"}
		for id, in := range inputs {
			if err := e.client.Start(ctx, id, "Work", in); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.client.Start(ctx, "waiter", "Waiter", ""); err != nil {
			t.Fatal(err)
		}
		for id := range inputs {
			e.wait(id)
		}
		eventually(t, 10*time.Second, "waiter to run", func() bool {
			st, err := e.client.Status(ctx, "waiter")
			return err == nil && st.State == client.StateRunning
		})
		m, err := e.client.GetSystemMetrics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Recount through the listing and execution APIs.
		var want client.SystemMetrics
		for off := 0; off >= 0; {
			page, err := e.client.ListInstances(ctx, client.ListOptions{Offset: off, Limit: 2})
			if err != nil {
				t.Fatal(err)
			}
			for _, info := range page.Instances {
				want.Instances++
				switch info.Status {
				case client.StatePending:
					want.Pending++
				case client.StateRunning:
					want.Running++
				case client.StateCompleted:
					want.Completed++
				case client.StateFailed:
					want.Failed++
				}
				execs, err := e.client.ListExecutions(ctx, info.InstanceID)
				if err != nil {
					t.Fatal(err)
				}
				for _, x := range execs {
					want.Executions++
					want.Events += int64(x.EventCount)
					if x.Status == "Failed" && (x.Failure == nil || x.Failure.Message == "") {
						t.Errorf("%s execution %d: failure not decoded: %+v", info.InstanceID, x.ExecutionID, x)
					}
				}
			}
			off = page.NextOffset
		}
		if m != want {
			t.Fatalf("metrics %+v, recount %+v", m, want)
		}
		if m.Completed != 3 || m.Failed != 2 || m.Running != 1 || m.Instances != 6 || m.Executions != 8 {
			t.Fatalf("metrics %+v, want 3 completed, 2 failed, 1 running, 8 executions", m)
		}
	})
}

func TestQueueDepthsShowAnUnservedTag(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env) {
		orchs := engine.NewOrchestrationRegistry().Register("Tagged", func(ctx *engine.OrchestrationContext, in string) (string, error) {
			return ctx.ScheduleActivity("Echo", "tagged", engine.WithTag("nobody")).Get()
		}).MustBuild()
		acts := mgmtActivities()
		e.startWorker(orchs, acts, worker.Options{NodeID: "default-node"})
		ctx := context.Background()
		if err := e.client.Start(ctx, "tagged", "Tagged", ""); err != nil {
			t.Fatal(err)
		}
		var d client.QueueDepths
		eventually(t, 10*time.Second, "the tagged activity to wait unserved", func() bool {
			var err error
			d, err = e.client.GetQueueDepths(ctx)
			return err == nil && len(d.Activities) == 1
		})
		want := client.BucketDepth{Bucket: "t:nobody#Echo", Ready: 1, Unserved: true}
		if d.Activities[0] != want || len(d.Orchestrations) != 0 || d.Timers != 0 || d.Partial {
			t.Fatalf("depths %+v, want only %+v", d, want)
		}
		if st, _ := e.client.Status(ctx, "tagged"); st.State != client.StateRunning {
			t.Fatalf("status %+v", st)
		}
		// A worker with the tag serves it.
		e.startWorker(nil, acts, worker.Options{NodeID: "nobody-node", Tags: worker.OnlyTags("nobody")})
		if st := e.wait("tagged"); st.Output != "tagged" {
			t.Fatalf("status %+v", st)
		}
		d, err := e.client.GetQueueDepths(ctx)
		if err != nil || len(d.Activities) != 0 || len(d.Orchestrations) != 0 {
			t.Fatalf("depths after: %+v %v", d, err)
		}
	})
}
