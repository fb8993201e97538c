package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/examples/basics"
	"github.com/duroworker/duroworker/examples/healthmonitor"
)

// pollInterval is how often dev reads GetInstanceInfo while it watches an
// instance.
const pollInterval = 20 * time.Millisecond

// Timings of the health monitor scenarios. 1.0.2 waits 5 times the interval.
const (
	upgradeInterval = 400 * time.Millisecond
	pinnedInterval  = 100 * time.Millisecond
	approvalTimeout = 300 * time.Millisecond
)

// check records one result and prints it.
func (d *devRun) check(scenario, instance, expected, got string, ok bool) {
	d.sum.add(result{Scenario: scenario, Instance: instance, Expected: expected, Got: got, OK: ok})
	verdict := "ok"
	if !ok {
		verdict = "FAIL, expected " + expected
	}
	d.p.Printf("%s: %s -> %s (%s)", scenario, instance, got, verdict)
}

// expectOutput waits for the instance to end and checks that it completed
// with output want.
func (d *devRun) expectOutput(ctx context.Context, scenario, id, want string) {
	expected := fmt.Sprintf("Completed %q", want)
	st, err := d.client.Wait(ctx, id)
	if err != nil {
		d.check(scenario, id, expected, "wait: "+causeOf(ctx, err), false)
		return
	}
	d.check(scenario, id, expected, describeStatus(st), st.State == client.StateCompleted && st.Output == want)
}

func describeStatus(st client.Status) string {
	switch st.State {
	case client.StateCompleted:
		return fmt.Sprintf("Completed %q", st.Output)
	case client.StateFailed:
		return fmt.Sprintf("Failed: %v", st.Failure)
	default:
		return string(st.State)
	}
}

// causeOf explains err, naming the run's interruption or timeout if that
// is what ended it.
func causeOf(ctx context.Context, err error) string {
	if ctx.Err() != nil {
		return context.Cause(ctx).Error()
	}
	return err.Error()
}

func (d *devRun) hello(ctx context.Context) error {
	const id, input = "hello-1", "world"
	if err := d.client.Start(ctx, id, basics.HelloName, input); err != nil {
		return err
	}
	d.p.Printf("hello: started %s (input %q)", id, input)
	d.expectOutput(ctx, "hello", id, "Hello, world!")
	return nil
}

func (d *devRun) fanOut(ctx context.Context) error {
	const id, n = "fan-out-1", 10
	if err := d.client.StartTyped(ctx, id, basics.FanOutName, n); err != nil {
		return err
	}
	d.p.Printf("fan-out: started %s (%d parallel activities, sum of squares)", id, n)
	d.expectOutput(ctx, "fan-out", id, fmt.Sprint(n*(n+1)*(2*n+1)/6))
	return nil
}

func (d *devRun) approval(ctx context.Context) error {
	const approved, forgotten = "approval-1", "approval-2"
	// The approved one gets a timeout far beyond the run: only the event
	// can end it in time.
	if err := d.client.StartTyped(ctx, approved, basics.ApprovalName, basics.ApprovalInput{TimeoutMS: time.Hour.Milliseconds()}); err != nil {
		return err
	}
	if err := d.client.StartTyped(ctx, forgotten, basics.ApprovalName, basics.ApprovalInput{TimeoutMS: approvalTimeout.Milliseconds()}); err != nil {
		return err
	}
	d.p.Printf("approval: started %s (timeout 1h) and %s (timeout %s, no event will come)", approved, forgotten, approvalTimeout)
	// The event subscription is made by the first turn: raise once Running.
	info, err := d.waitStarted(ctx, approved)
	if err != nil {
		return err
	}
	if info.Status == client.StateRunning {
		if err := d.client.RaiseEvent(ctx, approved, basics.ApproveEvent, "dev"); err != nil {
			return fmt.Errorf("raising %q on %s: %w", basics.ApproveEvent, approved, err)
		}
		d.p.Printf("approval: raised %q on %s", basics.ApproveEvent, approved)
	}
	var wg sync.WaitGroup
	wg.Go(func() { d.expectOutput(ctx, "approval", approved, basics.Approved) })
	wg.Go(func() { d.expectOutput(ctx, "approval", forgotten, basics.TimedOut) })
	wg.Wait()
	return nil
}

// waitStarted polls GetInstanceInfo until the instance's first turn has run
// (Running, or already ended).
func (d *devRun) waitStarted(ctx context.Context, id string) (client.InstanceInfo, error) {
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	for {
		info, err := d.client.GetInstanceInfo(ctx, id)
		if err != nil {
			return info, fmt.Errorf("instance info of %s: %s", id, causeOf(ctx, err))
		}
		if (info.Status == client.StateRunning && info.CurrentExecutionID > 0) || info.Status.Ended() {
			return info, nil
		}
		select {
		case <-ctx.Done():
			return info, fmt.Errorf("waiting for %s to start: %s", id, context.Cause(ctx))
		case <-ticker.C:
		}
	}
}

// watch follows an instance with healthmonitor.Watch, printing every change
// of version, execution or state, until it ends.
// An observation equal to prev (already printed) is not printed again.
func (d *devRun) watch(ctx context.Context, id string, prev healthmonitor.Observation) ([]healthmonitor.Observation, error) {
	return healthmonitor.Watch(ctx, d.client, id, pollInterval, func(o healthmonitor.Observation) {
		switch {
		case o.Version == prev.Version && o.ExecutionID == prev.ExecutionID && o.State == prev.State:
			// already printed
		case o.ExecutionID == 0:
			d.p.Printf("%s: %s", id, o.State)
		case o.State.Ended():
			d.p.Printf("%s: %s on %s in execution %d: %q", id, o.State, o.Version, o.ExecutionID, o.Output)
		case prev.ExecutionID == 0:
			d.p.Printf("%s: %s on %s, execution %d", id, o.State, o.Version, o.ExecutionID)
		case o.Version != prev.Version:
			d.p.Printf("%s: execution %d started on %s (execution %d ran %s): upgraded at continue-as-new", id, o.ExecutionID, o.Version, prev.ExecutionID, prev.Version)
		default:
			d.p.Printf("%s: execution %d started on %s (continue-as-new)", id, o.ExecutionID, o.Version)
		}
		prev = o
	})
}

// verify checks watched observations with healthmonitor.VerifyUpgrade and
// records the result.
func (d *devRun) verify(ctx context.Context, scenario, id string, obs []healthmonitor.Observation, watchErr error, from, to, expected string, fromFirst bool) {
	got := healthmonitor.DescribeExecutions(obs)
	if watchErr != nil {
		d.check(scenario, id, expected, causeOf(ctx, watchErr)+"; saw "+got, false)
		return
	}
	err := healthmonitor.VerifyUpgrade(obs, from, to)
	if err == nil && fromFirst && !strings.HasPrefix(got, "e1="+to) {
		err = fmt.Errorf("execution 1 was not observed on %s", to)
	}
	if err != nil {
		d.check(scenario, id, expected, err.Error()+"; saw "+got, false)
		return
	}
	last := obs[len(obs)-1]
	d.check(scenario, id, expected, fmt.Sprintf("%s on %s: %s", last.State, last.Version, got), true)
}

// rollingUpgrade is the versioning guide's "Version Upgrade Timing": the
// version changes at continue-as-new, not when the servers change.
func (d *devRun) rollingUpgrade(ctx context.Context) error {
	const sc = "rolling-upgrade"
	nodeA := d.nodeA
	if nodeA == nil || nodeA.stopped {
		return fmt.Errorf("node-a is not running")
	}
	in := healthmonitor.Input{Target: "db-1", IntervalMS: upgradeInterval.Milliseconds(), Cycles: 3}
	if err := d.client.StartTyped(ctx, "monitor-1", healthmonitor.Name, in); err != nil {
		return err
	}
	d.p.Printf("%s: started monitor-1 (%d cycles, interval %s)", sc, in.Cycles, upgradeInterval)
	info, err := d.waitStarted(ctx, "monitor-1")
	if err != nil {
		return err
	}
	if info.Status != client.StateRunning || info.OrchestrationVersion != healthmonitor.V1_0_0 {
		d.check(sc, "monitor-1", "Running on 1.0.0 before the deploy", fmt.Sprintf("%s on %s", info.Status, info.OrchestrationVersion), false)
		return nil
	}
	first := healthmonitor.Observation{Version: info.OrchestrationVersion, ExecutionID: info.CurrentExecutionID, State: info.Status}
	d.p.Printf("monitor-1: %s on %s, execution %d", first.State, first.Version, first.ExecutionID)

	// Watch from before the deploy until the end.
	var obs1 []healthmonitor.Observation
	var err1 error
	var wg sync.WaitGroup
	wg.Go(func() { obs1, err1 = d.watch(ctx, "monitor-1", first) })

	d.p.Printf("%s: deploy: start the upgraded node-b, then shut node-a down", sc)
	nodeB, err := d.startNode("node-b", "upgraded deployment: basics, health monitor 1.0.0, 1.0.1, 1.0.2, policy Latest",
		healthmonitor.Register(engine.NewOrchestrationRegistry(), healthmonitor.V1_0_2))
	if err != nil {
		wg.Wait()
		return err
	}
	if err := d.stopNode(nodeA); err != nil {
		wg.Wait()
		return err
	}
	if info, err := d.client.GetInstanceInfo(ctx, "monitor-1"); err == nil {
		d.p.Printf("%s: after the deploy monitor-1 still runs %s (execution %d): it upgrades at its next continue-as-new", sc, info.OrchestrationVersion, info.CurrentExecutionID)
	}

	// A new instance after the deploy runs the latest version at once.
	in2 := healthmonitor.Input{Target: "db-2", IntervalMS: upgradeInterval.Milliseconds(), Cycles: 2}
	if err := d.client.StartTyped(ctx, "monitor-2", healthmonitor.Name, in2); err != nil {
		wg.Wait()
		return err
	}
	d.p.Printf("%s: started monitor-2 after the deploy (%d cycles)", sc, in2.Cycles)
	obs2, err2 := d.watch(ctx, "monitor-2", healthmonitor.Observation{})
	wg.Wait()

	d.verify(ctx, sc, "monitor-1", obs1, err1, healthmonitor.V1_0_0, healthmonitor.V1_0_2,
		"Completed on 1.0.2, 1.0.0 -> 1.0.2 only at a new execution", false)
	d.verify(ctx, sc, "monitor-2", obs2, err2, healthmonitor.V1_0_2, healthmonitor.V1_0_2,
		"Completed on 1.0.2, 1.0.2 from execution 1", true)
	return d.stopNode(nodeB)
}

// pinning is the guide's "Pinning to exact version": with Exact("1.0.1")
// new instances and their continue-as-new run 1.0.1 although 1.0.2 is
// registered.
func (d *devRun) pinning(ctx context.Context) error {
	const sc = "pinning"
	reg := healthmonitor.Register(engine.NewOrchestrationRegistry(), healthmonitor.V1_0_2).
		SetPolicy(healthmonitor.Name, engine.Exact(healthmonitor.V1_0_1))
	nodeC, err := d.startNode("node-c", "basics, health monitor 1.0.0, 1.0.1, 1.0.2, policy Exact(1.0.1)", reg)
	if err != nil {
		return err
	}
	in := healthmonitor.Input{Target: "cache-1", IntervalMS: pinnedInterval.Milliseconds(), Cycles: 2}
	if err := d.client.StartTyped(ctx, "pinned-1", healthmonitor.Name, in); err != nil {
		_ = d.stopNode(nodeC)
		return err
	}
	d.p.Printf("%s: started pinned-1 (%d cycles)", sc, in.Cycles)
	obs, werr := d.watch(ctx, "pinned-1", healthmonitor.Observation{})
	d.verify(ctx, sc, "pinned-1", obs, werr, healthmonitor.V1_0_1, healthmonitor.V1_0_1,
		"Completed on 1.0.1 in every execution", false)
	return d.stopNode(nodeC)
}
