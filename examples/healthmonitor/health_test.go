package healthmonitor_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/examples/healthmonitor"
	"github.com/duroworker/duroworker/queue"
	"github.com/duroworker/duroworker/worker"
)

// cluster is one miniredis store shared by the worker nodes of a test.
type cluster struct {
	t      *testing.T
	store  *queue.Store
	client *client.Client
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	store := queue.New(rdb, queue.Options{Prefix: "hm"})
	c := client.New(store)
	t.Cleanup(func() { _ = c.Close() })
	return &cluster{t: t, store: store, client: c}
}

func testLogger() *slog.Logger {
	if os.Getenv("DUROWORKER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// node starts a worker node with the given registry; it is shut down when
// the test ends unless the test shuts it down first.
func (cl *cluster) node(id string, orchs *engine.OrchestrationRegistryBuilder) *worker.Worker {
	cl.t.Helper()
	return cl.nodeWith(id, orchs, healthmonitor.Activities(engine.NewActivityRegistry()).MustBuild())
}

func (cl *cluster) nodeWith(id string, orchs *engine.OrchestrationRegistryBuilder, acts *engine.ActivityRegistry) *worker.Worker {
	cl.t.Helper()
	w, err := worker.New(cl.store, orchs.MustBuild(), acts, worker.Options{
		NodeID:                  id,
		BlockTimeout:            200 * time.Millisecond,
		UnregisteredBackoffBase: 20 * time.Millisecond,
		UnregisteredBackoffMax:  200 * time.Millisecond,
		Logger:                  testLogger().With("node", id),
	})
	if err != nil {
		cl.t.Fatalf("worker.New(%s): %v", id, err)
	}
	if err := w.Start(context.Background()); err != nil {
		cl.t.Fatalf("start %s: %v", id, err)
	}
	cl.t.Cleanup(func() { shutdown(cl.t, w) })
	return w
}

func shutdown(t *testing.T, w *worker.Worker) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.Shutdown(ctx); err != nil && err != worker.ErrNotStarted {
		t.Logf("shutdown %s: %v", w.NodeID(), err)
	}
}

func upTo(v string) *engine.OrchestrationRegistryBuilder {
	return healthmonitor.Register(engine.NewOrchestrationRegistry(), v)
}

// waitRunning polls until the instance runs version at execution 1.
func (cl *cluster) waitRunning(id, version string) {
	cl.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := cl.client.GetInstanceInfo(context.Background(), id)
		if err == nil && info.Status == client.StateRunning && info.CurrentExecutionID >= 1 {
			if info.OrchestrationVersion != version || info.CurrentExecutionID != 1 {
				cl.t.Fatalf("%s runs %s execution %d, want %s execution 1", id, info.OrchestrationVersion, info.CurrentExecutionID, version)
			}
			return
		}
		if time.Now().After(deadline) {
			cl.t.Fatalf("%s not running after 10s (last info %+v, err %v)", id, info, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (cl *cluster) watch(id string) []healthmonitor.Observation {
	cl.t.Helper()
	obs, err := cl.watchErr(id)
	if err != nil {
		cl.t.Fatalf("watch: %v (seen %s)", err, healthmonitor.DescribeExecutions(obs))
	}
	return obs
}

// watchAll is watch for another goroutine than the test's: a failure is
// reported with Errorf and the observations made so far are returned.
func (cl *cluster) watchAll(id string) []healthmonitor.Observation {
	obs, err := cl.watchErr(id)
	if err != nil {
		cl.t.Errorf("watch: %v (seen %s)", err, healthmonitor.DescribeExecutions(obs))
	}
	return obs
}

func (cl *cluster) watchErr(id string) ([]healthmonitor.Observation, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return healthmonitor.Watch(ctx, cl.client, id, 10*time.Millisecond, func(o healthmonitor.Observation) {
		cl.t.Logf("%s: %s execution %d %s", id, o.State, o.ExecutionID, o.Version)
	})
}

// TestRollingUpgrade is the versioning guide's "Version Upgrade Timing": a
// 1.0.0 instance keeps running 1.0.0 after an upgraded node takes over, and
// switches to 1.0.2 exactly at a continue-as-new; an instance started after
// the upgrade runs 1.0.2 from its first execution.
func TestRollingUpgrade(t *testing.T) {
	cl := newCluster(t)
	ctx := context.Background()
	nodeA := cl.node("node-a", upTo(healthmonitor.V1_0_0))
	// The interval leaves the deploy (node-b up, node-a down) ample time to
	// finish within the first cycle.
	in := healthmonitor.Input{Target: "db-1", IntervalMS: 250, Cycles: 3}
	if err := cl.client.StartTyped(ctx, "monitor-1", healthmonitor.Name, in); err != nil {
		t.Fatal(err)
	}
	cl.waitRunning("monitor-1", healthmonitor.V1_0_0)

	// Deploy: the upgraded node joins, the old one leaves gracefully.
	cl.node("node-b", upTo(healthmonitor.V1_0_2))
	shutdown(t, nodeA)
	info, err := cl.client.GetInstanceInfo(ctx, "monitor-1")
	if err != nil {
		t.Fatal(err)
	}
	if info.OrchestrationVersion != healthmonitor.V1_0_0 {
		// The guide: no immediate switch when the servers change.
		t.Fatalf("right after the deploy monitor-1 runs %s (execution %d), want still 1.0.0", info.OrchestrationVersion, info.CurrentExecutionID)
	}
	if err := cl.client.StartTyped(ctx, "monitor-2", healthmonitor.Name, healthmonitor.Input{Target: "db-2", IntervalMS: 20, Cycles: 2}); err != nil {
		t.Fatal(err)
	}

	obs := cl.watch("monitor-1")
	if err := healthmonitor.VerifyUpgrade(obs, healthmonitor.V1_0_0, healthmonitor.V1_0_2); err != nil {
		t.Fatalf("monitor-1: %v (seen %s)", err, healthmonitor.DescribeExecutions(obs))
	}
	final := obs[len(obs)-1]
	if final.ExecutionID != 3 || !strings.HasPrefix(final.Output, "[v1.0.2] 3 of 3 cycles done for db-1") {
		t.Fatalf("monitor-1 final %+v", final)
	}

	obs2 := cl.watch("monitor-2")
	if err := healthmonitor.VerifyUpgrade(obs2, healthmonitor.V1_0_2, healthmonitor.V1_0_2); err != nil {
		t.Fatalf("monitor-2: %v (seen %s)", err, healthmonitor.DescribeExecutions(obs2))
	}
	if !strings.HasPrefix(obs2[len(obs2)-1].Output, "[v1.0.2] 2 of 2 cycles") {
		t.Fatalf("monitor-2 final %+v", obs2[len(obs2)-1])
	}
}

// TestHotFix is the guide's "Hot-fix deployment": 1.0.0 instances pick up the
// 1.0.1 fix at their next continue-as-new without manual intervention.
func TestHotFix(t *testing.T) {
	cl := newCluster(t)
	old := cl.node("node-a", upTo(healthmonitor.V1_0_0))
	if err := cl.client.StartTyped(context.Background(), "monitor-hf", healthmonitor.Name, healthmonitor.Input{Target: "api", IntervalMS: 100, Cycles: 2}); err != nil {
		t.Fatal(err)
	}
	cl.waitRunning("monitor-hf", healthmonitor.V1_0_0)
	// Watch from before the deploy: execution 1 may end while the old node
	// shuts down, and the watch must see it.
	watched := make(chan []healthmonitor.Observation, 1)
	go func() { watched <- cl.watchAll("monitor-hf") }()
	cl.node("node-b", upTo(healthmonitor.V1_0_1))
	shutdown(t, old)
	obs := <-watched
	if err := healthmonitor.VerifyUpgrade(obs, healthmonitor.V1_0_0, healthmonitor.V1_0_1); err != nil {
		t.Fatalf("%v (seen %s)", err, healthmonitor.DescribeExecutions(obs))
	}
}

// TestOldDeploymentStaysOnOldVersion: a node with only 1.0.0 registered runs
// every execution on 1.0.0.
func TestOldDeploymentStaysOnOldVersion(t *testing.T) {
	cl := newCluster(t)
	cl.node("node-a", upTo(healthmonitor.V1_0_0))
	if err := cl.client.StartTyped(context.Background(), "monitor-old", healthmonitor.Name, healthmonitor.Input{Target: "q", IntervalMS: 10, Cycles: 3}); err != nil {
		t.Fatal(err)
	}
	obs := cl.watch("monitor-old")
	if err := healthmonitor.VerifyUpgrade(obs, healthmonitor.V1_0_0, healthmonitor.V1_0_0); err != nil {
		t.Fatalf("%v (seen %s)", err, healthmonitor.DescribeExecutions(obs))
	}
	if out := obs[len(obs)-1].Output; out != "[v1.0.0] 3 of 3 cycles done for q, last check: healthy: q" {
		t.Fatalf("output %q", out)
	}
}

// TestPinnedVersion is the guide's "Pinning to exact version": with an Exact
// policy, new instances and every continue-as-new run the pinned version even
// though a later one is registered.
func TestPinnedVersion(t *testing.T) {
	cl := newCluster(t)
	cl.node("node-c", upTo(healthmonitor.V1_0_2).SetPolicy(healthmonitor.Name, engine.Exact(healthmonitor.V1_0_1)))
	if err := cl.client.StartTyped(context.Background(), "monitor-pinned", healthmonitor.Name, healthmonitor.Input{Target: "cache", IntervalMS: 10, Cycles: 2}); err != nil {
		t.Fatal(err)
	}
	obs := cl.watch("monitor-pinned")
	if err := healthmonitor.VerifyUpgrade(obs, healthmonitor.V1_0_1, healthmonitor.V1_0_1); err != nil {
		t.Fatalf("%v (seen %s)", err, healthmonitor.DescribeExecutions(obs))
	}
	if out := obs[len(obs)-1].Output; !strings.HasPrefix(out, "[v1.0.1] 2 of 2 cycles") {
		t.Fatalf("output %q", out)
	}
}

// TestIncreasedInterval: 1.0.2 waits 5 times Input.IntervalMS per cycle.
func TestIncreasedInterval(t *testing.T) {
	cl := newCluster(t)
	cl.node("node-b", upTo(healthmonitor.V1_0_2))
	started := time.Now()
	if err := cl.client.StartTyped(context.Background(), "monitor-slow", healthmonitor.Name, healthmonitor.Input{Target: "s", IntervalMS: 100, Cycles: 1}); err != nil {
		t.Fatal(err)
	}
	obs := cl.watch("monitor-slow")
	if elapsed := time.Since(started); elapsed < 500*time.Millisecond {
		t.Fatalf("1.0.2 cycle of a 100 ms interval took %s, want at least 500 ms", elapsed)
	}
	if last := obs[len(obs)-1]; last.Version != healthmonitor.V1_0_2 || last.State != client.StateCompleted {
		t.Fatalf("final %+v", last)
	}
}

func TestRegisterUpTo(t *testing.T) {
	for i, v := range healthmonitor.Versions() {
		reg := upTo(v).MustBuild()
		if got, want := reg.Versions(healthmonitor.Name), healthmonitor.Versions()[:i+1]; !slices.Equal(got, want) {
			t.Errorf("Register(%s) registered %v, want %v", v, got, want)
		}
		if _, resolved, err := reg.Resolve(healthmonitor.Name, ""); err != nil || resolved != v {
			t.Errorf("Register(%s): Latest resolves to %s (%v)", v, resolved, err)
		}
	}
	if got := upTo("").MustBuild().Versions(healthmonitor.Name); len(got) != 3 {
		t.Errorf("Register(\"\") registered %v", got)
	}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "2.0.0") {
			t.Fatalf("Register(2.0.0) did not panic with the version: %v", r)
		}
	}()
	upTo("2.0.0")
}

func TestVerifyUpgradeRejectsMidExecutionSwitch(t *testing.T) {
	obs := []healthmonitor.Observation{
		{Version: "1.0.0", ExecutionID: 1, State: client.StateRunning},
		{Version: "1.0.2", ExecutionID: 1, State: client.StateRunning},
		{Version: "1.0.2", ExecutionID: 2, State: client.StateCompleted},
	}
	if err := healthmonitor.VerifyUpgrade(obs, "1.0.0", "1.0.2"); err == nil || !strings.Contains(err.Error(), "middle of execution 1") {
		t.Fatalf("err %v", err)
	}
	obs[1].ExecutionID = 2
	if err := healthmonitor.VerifyUpgrade(obs, "1.0.0", "1.0.2"); err != nil {
		t.Fatal(err)
	}
	if err := healthmonitor.VerifyUpgrade(obs, "1.0.0", "1.0.1"); err == nil {
		t.Fatal("wrong final version accepted")
	}
	if got := healthmonitor.DescribeExecutions(obs); got != "e1=1.0.0 e2=1.0.2" {
		t.Fatalf("describe %q", got)
	}
}

// TestHotFixRetriesFlakyCheck shows what the 1.0.1 hot fix changes: a
// health check that fails once fails a 1.0.0 cycle, while 1.0.1 retries it.
func TestHotFixRetriesFlakyCheck(t *testing.T) {
	cl := newCluster(t)
	var mu sync.Mutex
	calls := map[string]int{}
	flaky := engine.NewActivityRegistry().Register(healthmonitor.HealthCheck, func(ctx *engine.ActivityContext, target string) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		calls[ctx.InstanceID()]++
		if calls[ctx.InstanceID()] == 1 {
			return "", errors.New("connection reset")
		}
		return "healthy: " + target, nil
	}).MustBuild()
	cl.nodeWith("node-old", upTo(healthmonitor.V1_0_0), flaky)
	in := healthmonitor.Input{Target: "db", IntervalMS: 10, Cycles: 1}
	if err := cl.client.StartTyped(context.Background(), "flaky-old", healthmonitor.Name, in); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := cl.client.Wait(ctx, "flaky-old")
	if err != nil || st.State != client.StateFailed || st.Failure == nil || !strings.Contains(st.Failure.Message, "connection reset") {
		t.Fatalf("1.0.0 with a flaky check: %+v (%v), want Failed with the check's error", st, err)
	}

	cl2 := newCluster(t)
	cl2.nodeWith("node-fixed", upTo(healthmonitor.V1_0_1), flaky)
	if err := cl2.client.StartTyped(context.Background(), "flaky-fixed", healthmonitor.Name, in); err != nil {
		t.Fatal(err)
	}
	st, err = cl2.client.Wait(ctx, "flaky-fixed")
	if err != nil || st.State != client.StateCompleted || st.Output != "[v1.0.1] 1 of 1 cycles done for db, last check: healthy: db" {
		t.Fatalf("1.0.1 with a flaky check: %+v (%v), want Completed after a retry", st, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls["flaky-fixed"] != 2 {
		t.Fatalf("1.0.1 ran the check %d times, want 2", calls["flaky-fixed"])
	}
}
