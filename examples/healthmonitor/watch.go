package healthmonitor

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/duroworker/duroworker/client"
)

// Observation is an instance's version, execution and state as
// client.GetInstanceInfo reported them at one moment: what a dashboard shows.
type Observation struct {
	// At is when the observation was made.
	At time.Time
	// Version is the orchestration version of the current execution (empty
	// while the instance is Pending).
	Version string
	// ExecutionID is the current execution, 0 while Pending.
	ExecutionID int64
	// State is the instance's state.
	State client.State
	// Output is the orchestration's output once it completed.
	Output string
}

func (o Observation) same(p Observation) bool {
	return o.Version == p.Version && o.ExecutionID == p.ExecutionID && o.State == p.State
}

// Watch polls c.GetInstanceInfo(instanceID) every interval until the
// instance completes or fails, calling onChange (if not nil) with every
// observation whose version, execution or state differs from the previous
// one. It returns those observations, the last one final; or, when ctx ends
// or the store fails, the observations so far and the error.
func Watch(ctx context.Context, c *client.Client, instanceID string, interval time.Duration, onChange func(Observation)) ([]Observation, error) {
	var seen []Observation
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		info, err := c.GetInstanceInfo(ctx, instanceID)
		if err != nil {
			return seen, fmt.Errorf("watching %s: %w", instanceID, err)
		}
		o := Observation{At: time.Now(), Version: info.OrchestrationVersion, ExecutionID: info.CurrentExecutionID, State: info.Status, Output: info.Output}
		if len(seen) == 0 || !o.same(seen[len(seen)-1]) {
			seen = append(seen, o)
			if onChange != nil {
				onChange(o)
			}
		}
		if o.State.Ended() {
			return seen, nil
		}
		select {
		case <-ctx.Done():
			return seen, fmt.Errorf("watching %s: %w", instanceID, ctx.Err())
		case <-ticker.C:
		}
	}
}

// VerifyUpgrade checks observations made by Watch against the versioning
// guide's upgrade rule: the instance ran version from first and completed on
// version to; versions never went backwards; and the version changed only
// together with the execution id, never in the middle of an execution.
func VerifyUpgrade(obs []Observation, from, to string) error {
	var runs []Observation // observations of a started execution
	for _, o := range obs {
		if o.ExecutionID > 0 {
			runs = append(runs, o)
		}
	}
	if len(runs) == 0 {
		return fmt.Errorf("no execution was observed")
	}
	if runs[0].Version != from {
		return fmt.Errorf("first observed execution %d ran %s, want %s", runs[0].ExecutionID, runs[0].Version, from)
	}
	last := runs[len(runs)-1]
	if last.State != client.StateCompleted {
		return fmt.Errorf("instance ended %s on %s (execution %d), want Completed", last.State, last.Version, last.ExecutionID)
	}
	if last.Version != to {
		return fmt.Errorf("instance completed on %s (execution %d), want %s", last.Version, last.ExecutionID, to)
	}
	for i := 1; i < len(runs); i++ {
		p, o := runs[i-1], runs[i]
		if o.ExecutionID < p.ExecutionID {
			return fmt.Errorf("execution id went back from %d to %d", p.ExecutionID, o.ExecutionID)
		}
		if o.Version == p.Version {
			continue
		}
		if o.ExecutionID == p.ExecutionID {
			return fmt.Errorf("version changed from %s to %s in the middle of execution %d", p.Version, o.Version, o.ExecutionID)
		}
		if slices.Index(Versions(), o.Version) < slices.Index(Versions(), p.Version) {
			return fmt.Errorf("version went back from %s to %s at execution %d", p.Version, o.Version, o.ExecutionID)
		}
	}
	return nil
}

// DescribeExecutions summarizes observations as the version of each observed
// execution, e.g. "e1=1.0.0 e2=1.0.2 e3=1.0.2".
func DescribeExecutions(obs []Observation) string {
	var parts []string
	var lastExec int64
	for _, o := range obs {
		if o.ExecutionID == 0 || o.ExecutionID == lastExec {
			continue
		}
		lastExec = o.ExecutionID
		parts = append(parts, fmt.Sprintf("e%d=%s", o.ExecutionID, o.Version))
	}
	if len(parts) == 0 {
		return "no execution observed"
	}
	return strings.Join(parts, " ")
}
