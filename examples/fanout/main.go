// Command fanout runs a fan-out/fan-in: the FanOut orchestration of
// examples/basics schedules one activity per number 1..10 at once, waits
// for all of them with ctx.Join, and sums the results (the sum of the
// squares, 385).
//
// Two worker nodes, with five activity slots each, share the activities. The square activity here is the
// same contract as in examples/basics (SquareActivity, n -> n*n) but takes
// 100 ms and reports which node ran it, so that the output shows the work
// spread over the nodes and running in parallel: ten activities of 100 ms
// each finish in a fraction of the second they would take one after the
// other.
//
// What to look for in the output: one line per activity with the node that
// ran it, the result 385, the elapsed time, and the history summary (10
// ActivityScheduled events in the first turn, then 10 completions).
//
//	go run ./examples/fanout [-redis redis://localhost:6379/0] [-v]
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/examples/basics"
	"github.com/duroworker/duroworker/examples/internal/demo"
	"github.com/duroworker/duroworker/worker"
)

// n is how many activities the orchestration fans out to.
const n = 10

// work is how long each activity takes.
const work = 100 * time.Millisecond

// slots is how many activities each node runs at once: with two nodes, all
// ten run together.
const slots = 5

func main() { os.Exit(run(os.Args[1:], os.Stdout)) }

func run(args []string, out io.Writer) int { return demo.Run("fanout", args, out, fanOut) }

func fanOut(ctx context.Context, env *demo.Env) error {
	orchs := engine.NewOrchestrationRegistry()
	basics.Register(orchs)
	acts := engine.NewActivityRegistry()
	engine.RegisterActivityTyped(acts, basics.SquareActivity, func(actx *engine.ActivityContext, x int) (int, error) {
		select {
		case <-time.After(work): // stands for real work: a call, a query
		case <-actx.Done():
			return 0, actx.Err()
		}
		env.Printf("square(%d) = %d on %s", x, x*x, actx.WorkerID())
		return x * x, nil
	})
	orchReg, actReg := orchs.MustBuild(), acts.MustBuild()
	for _, id := range []string{"node-1", "node-2"} {
		if _, err := env.StartNode(id, orchReg, actReg, worker.Options{ActivityConcurrency: slots}); err != nil {
			return err
		}
	}

	began := time.Now()
	if err := env.Client.StartTyped(ctx, "fan-out-1", basics.FanOutName, n); err != nil {
		return err
	}
	st, err := env.Wait(ctx, "fan-out-1")
	if err != nil {
		return err
	}
	elapsed := time.Since(began)
	env.Printf("fan-out-1: %s, output %s, in %s (%d activities of %s each)", st.State, st.Output, elapsed.Round(time.Millisecond), n, work)

	hist, err := env.Client.ReadHistory(ctx, "fan-out-1", 0)
	if err != nil {
		return err
	}
	counts := map[client.EventKind]int{}
	for _, e := range hist {
		counts[e.Kind]++
	}
	env.Printf("history: %d events: %d %s, %d %s",
		len(hist), counts[client.EventActivityScheduled], client.EventActivityScheduled,
		counts[client.EventActivityCompleted], client.EventActivityCompleted)

	if st.State != client.StateCompleted || st.Output != "385" {
		return fmt.Errorf("fan-out-1 ended %s %q (%v), want Completed 385", st.State, st.Output, st.Failure)
	}
	if counts[client.EventActivityScheduled] != n || counts[client.EventActivityCompleted] != n {
		return fmt.Errorf("history has %v", counts)
	}
	return nil
}
