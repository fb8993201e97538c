package tests

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/worker"
)

// TestTaggedActivitiesReachOnlyWorkersWithTheTag runs heterogeneous workers:
// a default worker, a GPU-only worker and an any-tag worker; each activity
// reports which worker ran it.
func TestTaggedActivitiesReachOnlyWorkersWithTheTag(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env) {
		orchs := engine.NewOrchestrationRegistry().Register("Mixed", func(ctx *engine.OrchestrationContext, in string) (string, error) {
			plain, err := ctx.ScheduleActivity("Where", "").Get()
			if err != nil {
				return "", err
			}
			gpu, err := ctx.ScheduleActivity("Where", "", engine.WithTag("gpu")).Get()
			if err != nil {
				return "", err
			}
			eu, err := ctx.ScheduleActivity("Where", "", engine.WithTag("eu")).Get()
			if err != nil {
				return "", err
			}
			return plain + " " + gpu + " " + eu, nil
		}).MustBuild()
		acts := engine.NewActivityRegistry().Register("Where", func(ctx *engine.ActivityContext, in string) (string, error) {
			return ctx.WorkerID(), nil
		}).MustBuild()
		noActs := engine.NewActivityRegistry().MustBuild()
		e.startWorker(orchs, noActs, worker.Options{NodeID: "orchestrator", Tags: worker.NoActivities()})
		e.startWorker(nil, acts, worker.Options{NodeID: "default"})
		e.startWorker(nil, acts, worker.Options{NodeID: "gpu-node", Tags: worker.OnlyTags("gpu")})
		if err := e.client.Start(context.Background(), "mixed", "Mixed", ""); err != nil {
			t.Fatal(err)
		}
		// The "eu" activity waits: nobody serves the tag.
		time.Sleep(300 * time.Millisecond)
		st, _ := e.client.Status(context.Background(), "mixed")
		if st.State.Ended() {
			t.Fatalf("ended although nobody serves tag eu: %+v", st)
		}
		e.startWorker(nil, acts, worker.Options{NodeID: "any-node", Tags: worker.AnyTag(), NodeHeartbeat: 50 * time.Millisecond})
		st = e.wait("mixed")
		if st.Output != fmt.Sprintf("%s %s %s", "default", "gpu-node", "any-node") {
			t.Fatalf("activities ran on %q, want default, gpu-node, any-node", st.Output)
		}
	})
}

func TestTagFilterValidation(t *testing.T) {
	for name, f := range map[string]worker.TagFilter{
		"empty list": worker.OnlyTags(),
		"bad tag":    worker.DefaultAndTags("a#b"),
	} {
		if _, err := worker.New(newEnv(t, nil, true).store, nil, nil, worker.Options{Tags: f}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
