package engine_test

import (
	"fmt"
	"time"

	"github.com/duroworker/duroworker/engine"
)

// The seed's pattern: one stable name, one function per version. New
// executions run the latest version unless a policy pins one.
func ExampleNewOrchestrationRegistry() {
	const monitor = "my-app::orchestration::monitor" // never changes

	monitorV1 := func(ctx *engine.OrchestrationContext, in string) (string, error) {
		ctx.TraceInfo("[v1.0.0] Starting...")
		if _, err := ctx.ScheduleTimer(time.Minute).Get(); err != nil {
			return "", err
		}
		return ctx.ContinueAsNew(in)
	}
	monitorV2 := func(ctx *engine.OrchestrationContext, in string) (string, error) {
		ctx.TraceInfo("[v1.0.1] Starting...")
		if _, err := ctx.ScheduleTimer(5 * time.Minute).Get(); err != nil {
			return "", err
		}
		return ctx.ContinueAsNew(in)
	}

	latest := engine.NewOrchestrationRegistry().
		Register(monitor, monitorV1).                   // 1.0.0
		RegisterVersioned(monitor, "1.0.1", monitorV2). // explicit version
		MustBuild()
	_, v, _ := latest.Resolve(monitor, "")
	fmt.Println("latest policy starts", v)

	pinned := engine.NewOrchestrationRegistry().
		Register(monitor, monitorV1).
		RegisterVersioned(monitor, "1.0.1", monitorV2).
		SetPolicy(monitor, engine.Exact("1.0.0")).
		MustBuild()
	_, v, _ = pinned.Resolve(monitor, "")
	fmt.Println("exact policy starts", v)

	_, err := engine.NewOrchestrationRegistry().
		RegisterVersioned(monitor, "2.0.0", monitorV2).
		RegisterVersioned(monitor, "1.5.0", monitorV1).
		Build()
	fmt.Println(err)
	// Output:
	// latest policy starts 1.0.1
	// exact policy starts 1.0.0
	// building orchestration registry: orchestration "my-app::orchestration::monitor": version 1.5.0 registered after 2.0.0 (versions must increase)
}

// An Executor runs turns of one execution; workers drive it, and so can a
// unit test of an orchestration, with no store at all.
func ExampleExecutor() {
	orch := func(ctx *engine.OrchestrationContext, in string) (string, error) {
		return ctx.ScheduleActivity("Upper", in).Get()
	}
	x, _ := engine.NewExecutor(orch, engine.ExecutionInfo{InstanceID: "i", ExecutionID: 1, Name: "O", Version: "1.0.0"}, nil, engine.ExecutorOptions{})
	defer x.Close()

	res, _ := x.Turn(time.UnixMilli(0), []engine.Message{{Kind: engine.MessageStart, Name: "O", Input: "hi"}})
	fmt.Println(res.Status, len(res.Activities), res.Activities[0].Name)

	done := res.Activities[0].Completion("HI", nil)
	res, _ = x.Turn(time.UnixMilli(1), []engine.Message{done})
	fmt.Println(res.Status, res.Output)
	// Output:
	// Running 1 Upper
	// Completed HI
}
