package healthmonitor_test

import (
	"context"
	"fmt"

	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/examples/healthmonitor"
	"github.com/duroworker/duroworker/examples/internal/demotest"
	"github.com/duroworker/duroworker/worker"
)

// Example runs one cycle of the health monitor on an in-process Redis
// (miniredis): a worker with every version registered runs the latest one.
func Example() {
	orchs := healthmonitor.Register(engine.NewOrchestrationRegistry(), healthmonitor.LatestVersion).MustBuild()
	acts := healthmonitor.Activities(engine.NewActivityRegistry()).MustBuild()
	demotest.Example(orchs, acts, worker.Options{NodeID: "example-node"}, func(ctx context.Context, c *client.Client) error {
		in := healthmonitor.Input{Target: "db-1", IntervalMS: 10, Cycles: 1}
		if err := c.StartTyped(ctx, "monitor-db-1", healthmonitor.Name, in); err != nil {
			return fmt.Errorf("start: %w", err)
		}
		st, err := c.Wait(ctx, "monitor-db-1")
		if err != nil {
			return fmt.Errorf("wait: %w", err)
		}
		fmt.Println(st.State, st.Version)
		fmt.Println(st.Output)
		return nil
	})
	// Output:
	// Completed 1.0.2
	// [v1.0.2] 1 of 1 cycles done for db-1, last check: healthy: db-1
}
