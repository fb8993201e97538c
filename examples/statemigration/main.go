// Command statemigration is the versioning guide's "Graceful migration with
// state changes": a new major version changes the shape of the state that
// an eternal orchestration carries from one execution to the next through
// continue-as-new, and reads the old shape once.
//
// The orchestration checks targets on a durable timer, one check per
// execution:
//
//   - 1.0.0 keeps its state as {"v1":{"target":...,"checks":...,"limit":...}};
//   - 2.0.0 keeps a new struct, State, with a list of targets. At the start
//     of each execution it detects the v1 format and migrates it; the state it
//     passes on to continue-as-new is always the new one.
//
// The scenario: node-old (1.0.0 only) runs instance sync-1; node-new (1.0.0
// and 2.0.0) replaces it while execution 1 waits on its timer. Execution 1
// finishes on 1.0.0 and continues as new with v1 state; execution 2 runs
// 2.0.0, receives that v1 state and migrates it; executions 3 and 4 receive
// the new format.
//
// What to look for in the output: the "[v2.0.0] Migrating from v1 state
// format" trace, exactly once; and the table at the end, one line per
// execution with its version and the format of the input it received
// (v1 for executions 1 and 2, new for 3 and 4).
//
//	go run ./examples/statemigration [-redis redis://localhost:6379/0] [-v]
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/examples/internal/demo"
	"github.com/duroworker/duroworker/worker"
)

// Name never changes across versions.
const Name = "examples::orchestration::target-sync"

// Check is the activity that checks one target.
const Check = "examples::activity::check-target"

// interval is the pause after each check; short for the demo.
const interval = 300 * time.Millisecond

// StateV1 is the state of 1.0.0: {"v1":{"target":"db-1","checks":1,"limit":4}}.
type StateV1 struct {
	V1 *struct {
		Target string `json:"target"`
		Checks int    `json:"checks"`
		Limit  int    `json:"limit"`
	} `json:"v1"`
}

// State is the state of 2.0.0: several targets, and where it came from.
type State struct {
	Targets      []string `json:"targets"`
	Checks       int      `json:"checks"`
	Limit        int      `json:"limit"`
	MigratedFrom string   `json:"migrated_from,omitempty"`
}

// targetSync is version 1.0.0 - the original: one target, state in the v1
// format.
func targetSync(ctx *engine.OrchestrationContext, st StateV1) (string, error) {
	if st.V1 == nil {
		return "", fmt.Errorf("[v1.0.0] state is not in the v1 format")
	}
	ctx.TraceInfo("[v1.0.0] Starting check cycle", "checks", st.V1.Checks)
	if _, err := ctx.ScheduleActivity(Check, st.V1.Target).Get(); err != nil {
		return "", err
	}
	if _, err := ctx.ScheduleTimer(interval).Get(); err != nil {
		return "", err
	}
	st.V1.Checks++
	if st.V1.Checks >= st.V1.Limit {
		return engine.Encode(st)
	}
	return engine.ContinueAsNewTyped(ctx, st)
}

// targetSync_2_0_0 is version 2.0.0 - changes from 1.0.0:
//   - new state format (State): a list of targets;
//   - migrates the v1 format when an execution receives it, which happens
//     once per instance: in the first 2.0.0 execution after a 1.0.0 one.
//
// It takes the raw input so that it can tell the two formats apart.
func targetSync_2_0_0(ctx *engine.OrchestrationContext, input string) (string, error) {
	ctx.TraceInfo("[v2.0.0] Starting with new state format")
	st, migrated, err := readState(input)
	if err != nil {
		return "", fmt.Errorf("[v2.0.0] %w", err)
	}
	if migrated {
		ctx.TraceInfo("[v2.0.0] Migrating from v1 state format", "targets", st.Targets, "checks", st.Checks)
	}
	for _, t := range st.Targets {
		if _, err := ctx.ScheduleActivity(Check, t).Get(); err != nil {
			return "", err
		}
	}
	if _, err := ctx.ScheduleTimer(interval).Get(); err != nil {
		return "", err
	}
	st.Checks++
	if st.Checks >= st.Limit {
		return engine.Encode(st)
	}
	return engine.ContinueAsNewTyped(ctx, st)
}

// readState reads either format; migrated reports a v1 input. The
// conversion is plain deterministic code, so it may run in the
// orchestration.
func readState(input string) (st State, migrated bool, err error) {
	var old StateV1
	if err := json.Unmarshal([]byte(input), &old); err == nil && old.V1 != nil {
		return State{
			Targets:      []string{old.V1.Target},
			Checks:       old.V1.Checks,
			Limit:        old.V1.Limit,
			MigratedFrom: "1.0.0",
		}, true, nil
	}
	if err := json.Unmarshal([]byte(input), &st); err != nil || st.Targets == nil {
		return State{}, false, fmt.Errorf("unreadable state %q", input)
	}
	return st, false, nil
}

// format names the state format of an input, for the table.
func format(input string) string {
	_, migrated, err := readState(input)
	switch {
	case err != nil:
		return "unknown"
	case migrated:
		return "v1"
	default:
		return "new"
	}
}

func main() { os.Exit(run(os.Args[1:], os.Stdout)) }

func run(args []string, out io.Writer) int {
	return demo.Run("statemigration", args, out, stateMigration)
}

func stateMigration(ctx context.Context, env *demo.Env) error {
	acts := engine.NewActivityRegistry().Register(Check, func(_ *engine.ActivityContext, target string) (string, error) {
		return "ok: " + target, nil
	}).MustBuild()

	v1 := engine.RegisterTyped(engine.NewOrchestrationRegistry(), Name, targetSync).MustBuild()
	nodeOld, err := env.StartNode("node-old", v1, acts, worker.Options{})
	if err != nil {
		return err
	}
	start := `{"v1":{"target":"db-1","checks":0,"limit":4}}`
	if err := env.Client.Start(ctx, "sync-1", Name, start); err != nil {
		return err
	}
	if _, err := env.WaitRunning(ctx, "sync-1"); err != nil {
		return err
	}

	// Deploy 2.0.0 next to 1.0.0 (still needed by the running execution).
	b := engine.RegisterTyped(engine.NewOrchestrationRegistry(), Name, targetSync)
	v2 := b.RegisterVersioned(Name, "2.0.0", targetSync_2_0_0).MustBuild()
	if _, err := env.StartNode("node-new", v2, acts, worker.Options{}); err != nil {
		return err
	}
	if err := env.StopNode(nodeOld); err != nil {
		return err
	}
	if info, err := env.Client.GetInstanceInfo(ctx, "sync-1"); err != nil {
		return err
	} else if info.CurrentExecutionID != 1 {
		return fmt.Errorf("the deployment took longer than the first cycle (sync-1 at execution %d)", info.CurrentExecutionID)
	}

	st, err := env.Wait(ctx, "sync-1")
	if err != nil {
		return err
	}
	env.Printf("sync-1: %s, output %s", st.State, st.Output)
	xs, err := env.PrintExecutions(ctx, "sync-1", func(x demo.Execution) string {
		return fmt.Sprintf("input format %-4s %s", format(x.Input), x.Input)
	})
	if err != nil {
		return err
	}

	var formats []string
	for _, x := range xs {
		formats = append(formats, format(x.Input))
	}
	if got, want := demo.Versions(xs), []string{"1.0.0", "2.0.0", "2.0.0", "2.0.0"}; !slices.Equal(got, want) {
		return fmt.Errorf("versions per execution %v, want %v", got, want)
	}
	if want := []string{"v1", "v1", "new", "new"}; !slices.Equal(formats, want) {
		return fmt.Errorf("input formats per execution %v, want %v", formats, want)
	}
	final, err := engine.Decode[State](st.Output)
	if err != nil {
		return err
	}
	if final.Checks != 4 || final.MigratedFrom != "1.0.0" || !slices.Equal(final.Targets, []string{"db-1"}) {
		return fmt.Errorf("final state %+v", final)
	}
	return nil
}
