// Command pinning is the versioning guide's "Pinning to exact version": three
// ways to keep instances off the latest version, and what each one pins.
//
// One orchestration, a job that runs three cycles with continue-as-new, is
// registered at 1.0.0 and 1.0.1. Its state may name a version to stay on
// (StayOn); then every cycle continues with ContinueAsNewVersioned instead
// of ContinueAsNew.
//
// Part 1, node-pinned: both versions registered, with
// SetPolicy(Name, engine.Exact("1.0.0")).
//
//   - exact-policy, started with client.Start: every execution runs 1.0.0
//     although 1.0.1 is registered. The policy decides the first execution
//     and every continue-as-new.
//   - start-versioned, started with client.StartVersioned at 1.0.1: the
//     first execution runs 1.0.1, the next ones go back to the policy's
//     1.0.0. StartVersioned pins one execution, not the instance (and an
//     Exact node is the one kind of node that moves an instance back).
//   - continue-versioned, started at 1.0.1 with StayOn "1.0.1": every
//     execution runs 1.0.1, because the code pins each continue-as-new
//     explicitly with ContinueAsNewVersioned, whatever the policy says.
//
// Part 2, node-latest replaces node-pinned without the Exact policy (the
// pin is lifted):
//
//   - latest, started with client.Start: every execution runs 1.0.1;
//   - start-old, started with StartVersioned at 1.0.0: the first execution
//     runs 1.0.0, and it upgrades to 1.0.1 at its first continue-as-new.
//
// What to look for in the output: the version of each execution of each
// instance, in the tables and the "[v1.0.x]" traces.
//
//	go run ./examples/pinning [-redis redis://localhost:6379/0] [-v]
package main

import (
	"context"
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
const Name = "examples::orchestration::pinned-job"

// Job is the job's state, carried through continue-as-new.
type Job struct {
	Cycles int `json:"cycles"`
	Done   int `json:"done"`
	// StayOn, when set, is the version every continue-as-new asks for
	// explicitly (ContinueAsNewVersioned) instead of leaving it to the
	// policy of the node that runs the next execution.
	StayOn string `json:"stay_on,omitempty"`
}

// job is version 1.0.0 - the original.
func job(ctx *engine.OrchestrationContext, in Job) (string, error) {
	return cycle(ctx, "[v1.0.0]", in)
}

// job_1_0_1 is version 1.0.1 - changes from 1.0.0: only the trace prefix, so
// that the output shows which code ran.
func job_1_0_1(ctx *engine.OrchestrationContext, in Job) (string, error) {
	return cycle(ctx, "[v1.0.1]", in)
}

func cycle(ctx *engine.OrchestrationContext, prefix string, in Job) (string, error) {
	ctx.TraceInfo(prefix+" Starting cycle", "cycle", in.Done+1)
	if _, err := ctx.ScheduleTimer(20 * time.Millisecond).Get(); err != nil {
		return "", err
	}
	in.Done++
	if in.Done >= in.Cycles {
		return fmt.Sprintf("%s %d cycles done", prefix, in.Done), nil
	}
	if in.StayOn != "" {
		// Stay on a version explicitly; this bypasses the policy.
		next, err := engine.Encode(in)
		if err != nil {
			return "", err
		}
		return ctx.ContinueAsNewVersioned(in.StayOn, next)
	}
	return engine.ContinueAsNewTyped(ctx, in)
}

// registry registers both versions; policy is applied when not nil.
func registry(policy *engine.VersionPolicy) *engine.OrchestrationRegistry {
	b := engine.NewOrchestrationRegistry()
	engine.RegisterTyped(b, Name, job)                         // 1.0.0
	engine.RegisterVersionedTyped(b, Name, "1.0.1", job_1_0_1) // explicit version
	if policy != nil {
		b.SetPolicy(Name, *policy)
	}
	return b.MustBuild()
}

// start describes one instance of the scenario and the versions its three
// executions must run.
type start struct {
	id, version string // version "" means client.Start
	job         Job
	want        []string
}

func main() { os.Exit(run(os.Args[1:], os.Stdout)) }

func run(args []string, out io.Writer) int { return demo.Run("pinning", args, out, pinning) }

func pinning(ctx context.Context, env *demo.Env) error {
	exact := engine.Exact("1.0.0")
	pinned, err := env.StartNode("node-pinned", registry(&exact), nil, worker.Options{})
	if err != nil {
		return err
	}
	err = runAll(ctx, env, []start{
		{"exact-policy", "", Job{Cycles: 3}, []string{"1.0.0", "1.0.0", "1.0.0"}},
		{"start-versioned", "1.0.1", Job{Cycles: 3}, []string{"1.0.1", "1.0.0", "1.0.0"}},
		{"continue-versioned", "1.0.1", Job{Cycles: 3, StayOn: "1.0.1"}, []string{"1.0.1", "1.0.1", "1.0.1"}},
	})
	if err != nil {
		return err
	}

	// Lift the pin: a node with the default policy (Latest) replaces it.
	if _, err := env.StartNode("node-latest", registry(nil), nil, worker.Options{}); err != nil {
		return err
	}
	if err := env.StopNode(pinned); err != nil {
		return err
	}
	return runAll(ctx, env, []start{
		{"latest", "", Job{Cycles: 3}, []string{"1.0.1", "1.0.1", "1.0.1"}},
		{"start-old", "1.0.0", Job{Cycles: 3}, []string{"1.0.0", "1.0.1", "1.0.1"}},
	})
}

// runAll starts the instances, waits for all of them and checks the
// version of each execution.
func runAll(ctx context.Context, env *demo.Env, starts []start) error {
	for _, s := range starts {
		input, err := engine.Encode(s.job)
		if err != nil {
			return err
		}
		how := "client.Start"
		if s.version != "" {
			how = "client.StartVersioned at " + s.version
		}
		env.Printf("%s: %s, input %s", s.id, how, input)
		// StartVersioned with an empty version is the same as Start.
		if err := env.Client.StartVersioned(ctx, s.id, Name, s.version, input); err != nil {
			return err
		}
	}
	var failed []string
	for _, s := range starts {
		st, err := env.Wait(ctx, s.id)
		if err != nil {
			return err
		}
		env.Printf("%s: %s, output %q", s.id, st.State, st.Output)
		xs, err := env.PrintExecutions(ctx, s.id, nil)
		if err != nil {
			return err
		}
		if got := demo.Versions(xs); !slices.Equal(got, s.want) {
			failed = append(failed, fmt.Sprintf("%s ran %v, want %v", s.id, got, s.want))
		}
	}
	if failed != nil {
		return fmt.Errorf("%v", failed)
	}
	return nil
}
