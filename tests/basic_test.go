package tests

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/worker"
)

func TestHelloWorldEndToEnd(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env) {
		orchs := engine.NewOrchestrationRegistry().Register("Hello", func(ctx *engine.OrchestrationContext, in string) (string, error) {
			a, err := ctx.ScheduleActivity("Greet", in).Get()
			if err != nil {
				return "", err
			}
			return ctx.ScheduleActivity("Greet", a).Get()
		}).MustBuild()
		acts := engine.NewActivityRegistry().Register("Greet", func(ctx *engine.ActivityContext, in string) (string, error) {
			return "hello " + in, nil
		}).MustBuild()
		e.startWorker(orchs, acts, worker.Options{})
		ctx := context.Background()
		var ids []string
		for i := 0; i < 5; i++ {
			ids = append(ids, fmt.Sprintf("h-%d", i))
			if err := e.client.Start(ctx, ids[i], "Hello", "world"); err != nil {
				t.Fatal(err)
			}
		}
		ended := e.waitAll(ids...)
		for _, id := range ids {
			if st := ended[id]; st.State != client.StateCompleted || st.Output != "hello hello world" {
				t.Fatalf("status of %s: %+v", id, st)
			}
		}
		info, err := e.client.GetInstanceInfo(ctx, "h-0")
		if err != nil || info.OrchestrationName != "Hello" || info.OrchestrationVersion != "1.0.0" || info.CurrentExecutionID != 1 || info.EnginePin != engine.Version {
			t.Fatalf("info %+v err %v", info, err)
		}
		if err := e.client.Start(ctx, "h-0", "Hello", "again"); !strings.Contains(fmt.Sprint(err), "exists") {
			t.Fatalf("duplicate start: %v", err)
		}
	})
}
