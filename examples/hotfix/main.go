// Command hotfix is the versioning guide's "Hot-fix deployment", played with
// the health monitor of examples/healthmonitor.
//
// The scenario:
//
//  1. node-a is the old deployment: it registers health monitor 1.0.0 only.
//     Instance monitor-1 starts there and runs 1.0.0: it checks its target,
//     waits on a durable timer and continues as new, three cycles in all.
//  2. While execution 1 waits on its timer, node-b starts with 1.0.0 and the
//     1.0.1 hot fix (the health check with retries and a timeout), and node-a
//     shuts down: a rolling deployment.
//  3. Nothing is interrupted. Execution 1 finishes on 1.0.0 (node-b still
//     registers it). Its continue-as-new resolves the Latest policy on
//     node-b, so execution 2 runs 1.0.1, and so does every later one.
//
// What to look for in the output: right after the deployment the instance
// still reports 1.0.0; the "dashboard" lines (client.GetInstanceInfo, polled)
// show the version change from 1.0.0 to 1.0.1 exactly when the execution id
// goes from 1 to 2; the traces carry their version prefix ("[v1.0.1] ...")
// and the node that ran them; the table at the end lists the version of each
// execution as its history records it.
//
//	go run ./examples/hotfix [-redis redis://localhost:6379/0] [-v]
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/examples/healthmonitor"
	"github.com/duroworker/duroworker/examples/internal/demo"
	"github.com/duroworker/duroworker/worker"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout)) }

func run(args []string, out io.Writer) int { return demo.Run("hotfix", args, out, hotfix) }

func hotfix(ctx context.Context, env *demo.Env) error {
	acts := healthmonitor.Activities(engine.NewActivityRegistry()).MustBuild()

	// The old deployment: 1.0.0 only.
	old := healthmonitor.Register(engine.NewOrchestrationRegistry(), healthmonitor.V1_0_0).MustBuild()
	nodeA, err := env.StartNode("node-a", old, acts, worker.Options{})
	if err != nil {
		return err
	}
	// A 300 ms cycle leaves the deployment below ample time to finish
	// while execution 1 waits on its timer.
	in := healthmonitor.Input{Target: "db-1", IntervalMS: 300, Cycles: 3}
	if err := env.Client.StartTyped(ctx, "monitor-1", healthmonitor.Name, in); err != nil {
		return err
	}
	info, err := env.WaitRunning(ctx, "monitor-1")
	if err != nil {
		return err
	}
	env.Printf("monitor-1: running version %s, execution %d", info.OrchestrationVersion, info.CurrentExecutionID)

	// Deploy the hot fix: node-b joins with 1.0.0 and 1.0.1, node-a leaves.
	fixed := healthmonitor.Register(engine.NewOrchestrationRegistry(), healthmonitor.V1_0_1).MustBuild()
	if _, err := env.StartNode("node-b", fixed, acts, worker.Options{}); err != nil {
		return err
	}
	if err := env.StopNode(nodeA); err != nil {
		return err
	}
	info, err = env.Client.GetInstanceInfo(ctx, "monitor-1")
	if err != nil {
		return err
	}
	env.Printf("monitor-1: after the deployment still version %s, execution %d (no immediate switch)", info.OrchestrationVersion, info.CurrentExecutionID)
	if info.OrchestrationVersion != healthmonitor.V1_0_0 || info.CurrentExecutionID != 1 {
		return fmt.Errorf("the deployment took longer than the first cycle; monitor-1 is already at %s execution %d", info.OrchestrationVersion, info.CurrentExecutionID)
	}

	// What a dashboard polling GetInstanceInfo sees until the monitor ends.
	obs, err := healthmonitor.Watch(ctx, env.Client, "monitor-1", 5*time.Millisecond, func(o healthmonitor.Observation) {
		env.Printf("dashboard: monitor-1 %-9s execution %d version %s", o.State, o.ExecutionID, o.Version)
	})
	if err != nil {
		return err
	}
	if err := healthmonitor.VerifyUpgrade(obs, healthmonitor.V1_0_0, healthmonitor.V1_0_1); err != nil {
		return fmt.Errorf("monitor-1: %w (seen %s)", err, healthmonitor.DescribeExecutions(obs))
	}
	final := obs[len(obs)-1]
	env.Printf("monitor-1: %s, output %q", final.State, final.Output)

	xs, err := env.PrintExecutions(ctx, "monitor-1", nil)
	if err != nil {
		return err
	}
	want := []string{healthmonitor.V1_0_0, healthmonitor.V1_0_1, healthmonitor.V1_0_1}
	if got := demo.Versions(xs); !slices.Equal(got, want) {
		return fmt.Errorf("versions per execution %v, want %v", got, want)
	}
	if !strings.HasPrefix(final.Output, "[v1.0.1] 3 of 3 cycles done for db-1") {
		return fmt.Errorf("output %q, want the 1.0.1 code to finish the third cycle", final.Output)
	}
	return nil
}
