// Command approval runs a human approval with a deadline: the Approval
// orchestration of examples/basics waits for an external "approve" event
// and a durable timer at once, with ctx.Select, and takes whichever comes
// first.
//
// Two instances run:
//
//   - approve-me waits up to 10 s; the program raises "approve" (as a person
//     clicking a button would, from any process, with client.RaiseEvent) once
//     the instance is Running, and it completes "approved" at once;
//   - forget-me waits up to 300 ms; nobody approves it, its timer fires and
//     it completes "timed out". An event raised after that is refused with
//     client.ErrInstanceEnded.
//
// What to look for in the output: each instance's outcome and how long it
// took (approve-me well under its 10 s deadline, forget-me just over its
// 300 ms), and in the history which of the two futures won the Select
// (ExternalEvent for approve-me, TimerFired for forget-me).
//
//	go run ./examples/approval [-redis redis://localhost:6379/0] [-v]
package main

import (
	"context"
	"errors"
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

func main() { os.Exit(run(os.Args[1:], os.Stdout)) }

func run(args []string, out io.Writer) int { return demo.Run("approval", args, out, approval) }

func approval(ctx context.Context, env *demo.Env) error {
	orchs := engine.NewOrchestrationRegistry()
	basics.Register(orchs)
	acts := engine.NewActivityRegistry()
	basics.Activities(acts)
	if _, err := env.StartNode("node-1", orchs.MustBuild(), acts.MustBuild(), worker.Options{}); err != nil {
		return err
	}

	cases := []struct {
		id      string
		timeout time.Duration
		want    string
	}{
		{"approve-me", 10 * time.Second, basics.Approved},
		{"forget-me", 300 * time.Millisecond, basics.TimedOut},
	}
	began := map[string]time.Time{}
	for _, c := range cases {
		began[c.id] = time.Now()
		in := basics.ApprovalInput{TimeoutMS: c.timeout.Milliseconds()}
		if err := env.Client.StartTyped(ctx, c.id, basics.ApprovalName, in); err != nil {
			return err
		}
		env.Printf("%s: started, waits up to %s for %q", c.id, c.timeout, basics.ApproveEvent)
	}

	// The subscription to the event is made in the first turn: raise the
	// event once the instance is Running.
	if _, err := env.WaitRunning(ctx, "approve-me"); err != nil {
		return err
	}
	if err := env.Client.RaiseEvent(ctx, "approve-me", basics.ApproveEvent, "alice"); err != nil {
		return err
	}
	env.Printf("approve-me: raised %q (by alice)", basics.ApproveEvent)

	for _, c := range cases {
		st, err := env.Wait(ctx, c.id)
		if err != nil {
			return err
		}
		took := time.Since(began[c.id])
		winner, err := selectWinner(ctx, env.Client, c.id)
		if err != nil {
			return err
		}
		env.Printf("%s: %s %q after %s (deadline %s); history: %s won", c.id, st.State, st.Output, took.Round(time.Millisecond), c.timeout, winner)
		if st.State != client.StateCompleted || st.Output != c.want {
			return fmt.Errorf("%s ended %s %q (%v), want Completed %q", c.id, st.State, st.Output, st.Failure, c.want)
		}
	}

	// Too late: forget-me has ended and takes no more events.
	err := env.Client.RaiseEvent(ctx, "forget-me", basics.ApproveEvent, "bob")
	env.Printf("forget-me: raising %q now: %v", basics.ApproveEvent, err)
	if !errors.Is(err, client.ErrInstanceEnded) {
		return fmt.Errorf("raising an event on an ended instance returned %v, want ErrInstanceEnded", err)
	}
	return nil
}

// selectWinner tells from the history which future completed first: the
// event or the timer.
func selectWinner(ctx context.Context, c *client.Client, id string) (client.EventKind, error) {
	hist, err := c.ReadHistory(ctx, id, 0)
	if err != nil {
		return "", err
	}
	for _, e := range hist {
		if e.Kind == client.EventExternalEvent || e.Kind == client.EventTimerFired {
			return e.Kind, nil
		}
	}
	return "", fmt.Errorf("%s: neither an event nor a timer in its history", id)
}
