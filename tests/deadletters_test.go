package tests

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/worker"
)

// TestDeadLettersCanBeInspectedRequeuedAndDropped: poisoned work lands in
// the dead-letter stream with its reason; after the missing code is
// deployed, requeueing it (fresh attempts) lets the instance finish.
func TestDeadLettersCanBeInspectedRequeuedAndDropped(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		caller := func(ctx *engine.OrchestrationContext, in string) (string, error) {
			a, err := ctx.ScheduleActivity("Echo", "first").Get()
			if err != nil {
				return "", err
			}
			b, err := ctx.ScheduleActivity("Late", "second").Get()
			if err != nil {
				return "", err
			}
			return a + "+" + b, nil
		}
		before := engine.NewOrchestrationRegistry().Register("Caller", caller).MustBuild()
		_, echo := echoRegistries()
		old := e.startWorker(before, echo, fastPoison)
		for _, s := range []struct{ id, name string }{{"late-orch", "LateOrch"}, {"late-act", "Caller"}, {"to-drop", "LateOrch"}} {
			if err := e.client.Start(ctx, s.id, s.name, "in"); err != nil {
				t.Fatal(err)
			}
		}
		for _, id := range []string{"late-orch", "late-act", "to-drop"} {
			if st := e.wait(id); st.State != client.StateFailed || !engine.IsPoison(st.Failure) {
				t.Fatalf("%s: %+v", id, st.Failure)
			}
		}
		dls, err := e.client.ListDeadLetters(ctx, "", 10)
		if err != nil || len(dls) != 3 {
			t.Fatalf("dead letters %+v %v", dls, err)
		}
		byInstance := map[string]client.DeadLetter{}
		for _, d := range dls {
			byInstance[d.InstanceID] = d
			if d.Attempts != fastPoison.MaxAttempts+1 || !strings.Contains(d.Reason, "not registered") {
				t.Fatalf("dead letter %+v", d)
			}
		}
		if d := byInstance["late-act"]; d.Kind != "activity" || !strings.Contains(d.WorkBody, `"Late"`) {
			t.Fatalf("activity dead letter %+v", d)
		}
		if d := byInstance["late-orch"]; d.Kind != "orchestration" || len(d.Messages) != 1 || !strings.Contains(d.Messages[0], `"LateOrch"`) {
			t.Fatalf("orchestration dead letter %+v", d)
		}

		// Deploy the missing code, then requeue two and drop one.
		_ = old.Shutdown(ctx)
		after := engine.NewOrchestrationRegistry().Register("Caller", caller).
			Register("LateOrch", func(ctx *engine.OrchestrationContext, in string) (string, error) {
				return "late orchestration ran " + in, nil
			}).
			MustBuild()
		acts := engine.NewActivityRegistry().
			Register("Echo", func(ctx *engine.ActivityContext, in string) (string, error) { return in, nil }).
			Register("Late", func(ctx *engine.ActivityContext, in string) (string, error) { return "late " + in, nil }).MustBuild()
		e.startWorker(after, acts, worker.Options{})
		for _, id := range []string{"late-orch", "late-act"} {
			if err := e.client.RequeueDeadLetter(ctx, byInstance[id].ID); err != nil {
				t.Fatalf("requeue %s: %v", id, err)
			}
		}
		if st := e.wait("late-orch"); st.State != client.StateCompleted || st.Output != "late orchestration ran in" {
			t.Fatalf("late-orch after requeue: %+v", st)
		}
		if st := e.wait("late-act"); st.State != client.StateCompleted || st.Output != "first+late second" {
			t.Fatalf("late-act after requeue: %+v %v", st, st.Failure)
		}
		if err := e.client.DropDeadLetter(ctx, byInstance["to-drop"].ID); err != nil {
			t.Fatal(err)
		}
		if st, _ := e.client.Status(ctx, "to-drop"); st.State != client.StateFailed {
			t.Fatalf("dropped dead letter changed its instance: %+v", st)
		}
		if left, _ := e.client.ListDeadLetters(ctx, "", 10); len(left) != 0 {
			t.Fatalf("dead letters left: %+v", left)
		}
		if err := e.client.RequeueDeadLetter(ctx, byInstance["late-orch"].ID); !errors.Is(err, client.ErrDeadLetterNotFound) {
			t.Fatalf("second requeue: %v", err)
		}
		m, err := e.client.GetSystemMetrics(ctx)
		if err != nil || m.Completed != 2 || m.Failed != 1 || m.Running != 0 || m.Pending != 0 {
			t.Fatalf("metrics after requeue: %+v %v", m, err)
		}
	})
}
