package basics_test

import (
	"context"
	"fmt"

	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/examples/basics"
	"github.com/duroworker/duroworker/examples/internal/demotest"
	"github.com/duroworker/duroworker/worker"
)

// Example runs Hello and FanOut on an in-process Redis (miniredis).
func Example() {
	orchs := engine.NewOrchestrationRegistry()
	basics.Register(orchs)
	acts := engine.NewActivityRegistry()
	basics.Activities(acts)
	demotest.Example(orchs.MustBuild(), acts.MustBuild(), worker.Options{}, func(ctx context.Context, c *client.Client) error {
		if err := c.Start(ctx, "hello-1", basics.HelloName, "world"); err != nil {
			return fmt.Errorf("start: %w", err)
		}
		if err := c.StartTyped(ctx, "fan-out-1", basics.FanOutName, 10); err != nil {
			return fmt.Errorf("start: %w", err)
		}
		for _, id := range []string{"hello-1", "fan-out-1"} {
			st, err := c.Wait(ctx, id)
			if err != nil {
				return fmt.Errorf("wait: %w", err)
			}
			fmt.Println(id, st.State, st.Output)
		}
		return nil
	})
	// Output:
	// hello-1 Completed Hello, world!
	// fan-out-1 Completed 385
}
