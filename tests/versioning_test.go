package tests

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/worker"
)

// Seed, "Code Organization Pattern": a stable NAME constant and one function
// per version, each tracing with its version prefix.
const monitorName = "tests::orchestration::health-monitor"

// monitorVersion returns the function of one monitor version: it waits for
// its timer, then continues as new once with its own version appended to
// the input, and on its second execution completes. The output therefore
// lists the version that ran the end of each execution.
func monitorVersion(version string, interval time.Duration) engine.OrchestrationFunc {
	return func(ctx *engine.OrchestrationContext, input string) (string, error) {
		ctx.TraceInfo(fmt.Sprintf("[v%s] Starting health check cycle", version))
		if _, err := ctx.ScheduleTimer(interval).Get(); err != nil {
			return "", err
		}
		out := input + "|" + version + "@" + fmt.Sprint(ctx.ExecutionID())
		if strings.Count(out, "|") >= 2 {
			return out, nil
		}
		return ctx.ContinueAsNew(out)
	}
}

// observeVersions polls GetInstanceInfo until the instance ends and returns
// every distinct (execution, version) pair seen.
func observeVersions(t *testing.T, c *client.Client, id string, stop <-chan struct{}) []string {
	var seen []string
	last := ""
	for {
		info, err := c.GetInstanceInfo(context.Background(), id)
		if err == nil {
			cur := fmt.Sprintf("%d:%s", info.CurrentExecutionID, info.OrchestrationVersion)
			if cur != last {
				seen = append(seen, cur)
				last = cur
			}
			if info.Status.Ended() {
				return seen
			}
		}
		select {
		case <-stop:
			return seen
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// TestSeedVersionUpgradeHappensAtContinueAsNew is the seed's "Version Upgrade
// Timing": an instance started while only 1.0.0 is registered keeps running
// 1.0.0 after the worker restarts with 1.0.1 and 1.0.2 registered, until its
// timer fires and it continues as new; then it runs 1.0.2, and
// GetInstanceInfo's version changes from 1.0.0 to 1.0.2 exactly when the
// execution id changes.
func TestSeedVersionUpgradeHappensAtContinueAsNew(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env) {
		interval := 600 * time.Millisecond
		old := engine.NewOrchestrationRegistry().
			Register(monitorName, monitorVersion("1.0.0", interval)).
			MustBuild()
		upgraded := engine.NewOrchestrationRegistry().
			Register(monitorName, monitorVersion("1.0.0", interval)).
			RegisterVersioned(monitorName, "1.0.1", monitorVersion("1.0.1", interval)).
			RegisterVersioned(monitorName, "1.0.2", monitorVersion("1.0.2", interval)).
			MustBuild()

		nodeA := e.startWorker(old, nil, worker.Options{NodeID: "node-a"})
		ctx := context.Background()
		if err := e.client.Start(ctx, "monitor-1", monitorName, "start"); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "monitor-1 running on 1.0.0", func() bool {
			info, err := e.client.GetInstanceInfo(ctx, "monitor-1")
			return err == nil && info.Status == client.StateRunning && info.OrchestrationVersion == "1.0.0"
		})
		stop := make(chan struct{})
		var seen []string
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); seen = observeVersions(t, e.client, "monitor-1", stop) }()

		// Deploy: the upgraded node starts, the old one shuts down, while
		// the first execution waits on its timer.
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := nodeA.Shutdown(sctx); err != nil {
			t.Fatal(err)
		}
		cancel()
		e.startWorker(upgraded, nil, worker.Options{NodeID: "node-b"})

		st := e.wait("monitor-1")
		close(stop)
		wg.Wait()
		if st.State != client.StateCompleted {
			t.Fatalf("status %+v", st)
		}
		// Execution 1 ended on 1.0.0 code (run by node B after the
		// restart), execution 2 ran 1.0.2.
		if st.Output != "start|1.0.0@1|1.0.2@2" {
			t.Fatalf("output %q: want execution 1 finished by 1.0.0 and execution 2 by 1.0.2", st.Output)
		}
		for _, s := range seen {
			if s != "1:1.0.0" && s != "2:1.0.2" {
				t.Fatalf("observed execution:version %s; versions may change only with the execution (seen %v)", s, seen)
			}
		}
		if seen[len(seen)-1] != "2:1.0.2" {
			t.Fatalf("final observation %v", seen)
		}

		// A new instance started after the upgrade runs 1.0.2 from its
		// first execution (Latest).
		if err := e.client.Start(ctx, "monitor-2", monitorName, "start"); err != nil {
			t.Fatal(err)
		}
		if st := e.wait("monitor-2"); st.Output != "start|1.0.2@1|1.0.2@2" {
			t.Fatalf("monitor-2 output %q", st.Output)
		}
	})
}

// TestSeedExactPolicyPinsStartsAndContinueAsNew is the seed's "Pinning to
// exact version": with Exact(1.0.0) both new starts and continue-as-new stay
// on 1.0.0 although 1.0.1 is registered; ContinueAsNewVersioned pins
// explicitly; StartVersioned starts an explicit version.
func TestSeedExactPolicyPinsStartsAndContinueAsNew(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env) {
		interval := 10 * time.Millisecond
		pinnedCAN := func(ctx *engine.OrchestrationContext, input string) (string, error) {
			if strings.HasPrefix(input, "again") {
				return input + "|" + ctx.Version(), nil
			}
			return ctx.ContinueAsNewVersioned("1.0.1", "again from "+ctx.Version())
		}
		orchs := engine.NewOrchestrationRegistry().
			Register(monitorName, monitorVersion("1.0.0", interval)).
			RegisterVersioned(monitorName, "1.0.1", monitorVersion("1.0.1", interval)).
			SetPolicy(monitorName, engine.Exact("1.0.0")).
			Register("Pinner", pinnedCAN).
			RegisterVersioned("Pinner", "1.0.1", pinnedCAN).
			RegisterVersioned("Pinner", "2.0.0", pinnedCAN).
			MustBuild()
		e.startWorker(orchs, nil, worker.Options{})
		ctx := context.Background()

		if err := e.client.Start(ctx, "exact", monitorName, "start"); err != nil {
			t.Fatal(err)
		}
		if st := e.wait("exact"); st.Output != "start|1.0.0@1|1.0.0@2" {
			t.Fatalf("Exact policy: output %q, want both executions on 1.0.0", st.Output)
		}
		if err := e.client.StartVersioned(ctx, "explicit", monitorName, "1.0.1", "start"); err != nil {
			t.Fatal(err)
		}
		if st := e.wait("explicit"); st.Output != "start|1.0.1@1|1.0.0@2" {
			t.Fatalf("StartVersioned: output %q, want 1.0.1 then the policy's 1.0.0", st.Output)
		}
		if err := e.client.Start(ctx, "can-versioned", "Pinner", "first"); err != nil {
			t.Fatal(err)
		}
		st := e.wait("can-versioned")
		if st.Output != "again from 2.0.0|1.0.1" || st.Version != "1.0.1" {
			t.Fatalf("ContinueAsNewVersioned: %+v", st)
		}
	})
}

// TestSeedHotFixWithRetryPolicy is the seed's "Hot-fix deployment": 1.0.1
// retries the health check with a per-attempt timeout; running 1.0.0
// instances pick the fix up at their next continue-as-new.
func TestSeedHotFixWithRetryPolicy(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env) {
		var mu sync.Mutex
		calls := 0
		acts := engine.NewActivityRegistry().Register("HealthCheck", func(ctx *engine.ActivityContext, in string) (string, error) {
			mu.Lock()
			defer mu.Unlock()
			calls++
			if calls%2 == 1 {
				return "", fmt.Errorf("transient failure %d", calls)
			}
			return "healthy", nil
		}).MustBuild()
		v100 := func(ctx *engine.OrchestrationContext, in string) (string, error) {
			// 1.0.0: no retry, so a transient failure fails the check.
			res, err := ctx.ScheduleActivity("HealthCheck", in).Get()
			if err != nil {
				res = "unhealthy"
			}
			return ctx.ContinueAsNew(in + "|" + res)
		}
		v101 := func(ctx *engine.OrchestrationContext, in string) (string, error) {
			ctx.TraceInfo("[v1.0.1] Starting with increased timeout fix")
			res, err := ctx.ScheduleActivity("HealthCheck", in, engine.WithTimeout(30*time.Second),
				engine.WithRetry(engine.NewRetryPolicy(3).WithBackoff(engine.FixedBackoff(10*time.Millisecond)))).Get()
			if err != nil {
				return "", err
			}
			return in + "|" + res + "@" + ctx.Version(), nil
		}
		old := engine.NewOrchestrationRegistry().Register("Health", v100).MustBuild()
		fixed := engine.NewOrchestrationRegistry().Register("Health", v100).RegisterVersioned("Health", "1.0.1", v101).MustBuild()

		// The old deployment runs execution 1 on 1.0.0 and continues as new;
		// by then only the fixed deployment is up.
		nodeA := e.startWorker(old, acts, worker.Options{NodeID: "old"})
		ctx := context.Background()
		if err := e.client.Start(ctx, "hot", "Health", "db"); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "execution 2", func() bool {
			info, err := e.client.GetInstanceInfo(ctx, "hot")
			return err == nil && (info.CurrentExecutionID >= 2 || info.Status.Ended())
		})
		_ = nodeA.Shutdown(ctx)
		e.startWorker(fixed, acts, worker.Options{NodeID: "fixed"})
		st := e.wait("hot")
		// Execution 1 (1.0.0) saw the transient failure; execution 2 may run
		// on 1.0.0 once more if node "old" continued it before shutting
		// down, but the instance must end with the fix's retried result.
		if st.State != client.StateCompleted || !strings.HasSuffix(st.Output, "|healthy@1.0.1") {
			t.Fatalf("status %+v", st)
		}
	})
}

// TestNoDowngradeDuringRollingUpgrade runs an old node (1.0.0 only) and an
// upgraded node (1.0.0..1.0.2) side by side: once an instance has run 1.0.2,
// no later execution runs an older version, whichever node fetches it.
func TestNoDowngradeDuringRollingUpgrade(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env) {
		loop := func(version string) engine.OrchestrationFunc {
			return func(ctx *engine.OrchestrationContext, in string) (string, error) {
				out := in + " " + ctx.Version()
				if strings.Count(out, " ") >= 6 {
					return out, nil
				}
				if _, err := ctx.ScheduleTimer(5 * time.Millisecond).Get(); err != nil {
					return "", err
				}
				return ctx.ContinueAsNew(out)
			}
		}
		old := engine.NewOrchestrationRegistry().Register("Loop", loop("1.0.0")).MustBuild()
		upgraded := engine.NewOrchestrationRegistry().Register("Loop", loop("1.0.0")).
			RegisterVersioned("Loop", "1.0.1", loop("1.0.1")).RegisterVersioned("Loop", "1.0.2", loop("1.0.2")).MustBuild()
		opts := worker.Options{UnregisteredBackoffBase: 5 * time.Millisecond, UnregisteredBackoffMax: 20 * time.Millisecond, MaxAttempts: 50}
		opts.NodeID = "old"
		e.startWorker(old, nil, opts)
		opts.NodeID = "upgraded"
		e.startWorker(upgraded, nil, opts)
		ctx := context.Background()
		for i := 0; i < 10; i++ {
			if err := e.client.Start(ctx, fmt.Sprint("loop-", i), "Loop", "run:"); err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < 10; i++ {
			st := e.wait(fmt.Sprint("loop-", i))
			if st.State != client.StateCompleted {
				t.Fatalf("loop-%d: %+v", i, st)
			}
			seen102 := false
			for _, v := range strings.Fields(st.Output)[1:] {
				if v == "1.0.2" {
					seen102 = true
				} else if seen102 {
					t.Fatalf("loop-%d went back to %s after 1.0.2: %q", i, v, st.Output)
				}
			}
		}
	})
}
