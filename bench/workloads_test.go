package bench

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/internal/redistest"
)

// TestWorkloadsComplete runs every duroworker workload tiny on miniredis
// and checks that everything it started completed. No speed is asserted.
func TestWorkloadsComplete(t *testing.T) {
	cases := []struct {
		name string
		run  func(context.Context, Options) (Result, error)
		opts Options
	}{
		{"drain", nil, Options{N: 20, K: 2}},
		{"steady one at a time", nil, Options{N: 10}},
		{"steady rate", nil, Options{Rate: 200, Duration: 100 * time.Millisecond}},
		{"sequential", nil, Options{N: 1, K: 5}},
		{"sequential many", nil, Options{N: 5, K: 3}},
		{"long", nil, Options{K: 30}},
		{"fanout", nil, Options{N: 2, K: 20}},
		{"fanout retry", nil, Options{N: 2, K: 20, Retry: true, FailEvery: 7}},
		{"timers", nil, Options{N: 10, Delay: 200 * time.Millisecond}},
		{"sessions", nil, Options{N: 2, K: 10, Workers: 2}},
		{"inflight", nil, Options{N: 30}},
	}
	runs := map[string]func(context.Context, Options) (Result, error){}
	_, rdb := redistest.StartMini(t)
	wrap := func(f func(context.Context, *redis.Client, Options) (Result, error)) func(context.Context, Options) (Result, error) {
		return func(ctx context.Context, o Options) (Result, error) { return f(ctx, rdb, o) }
	}
	runs["drain"] = wrap(RunDrain)
	runs["steady one at a time"] = wrap(RunSteady)
	runs["steady rate"] = wrap(RunSteady)
	runs["sequential"] = wrap(RunSequential)
	runs["sequential many"] = wrap(RunSequential)
	runs["long"] = wrap(RunLong)
	runs["fanout"] = wrap(RunFanout)
	runs["fanout retry"] = wrap(RunFanout)
	runs["timers"] = wrap(RunTimers)
	runs["sessions"] = wrap(RunSessions)
	runs["inflight"] = wrap(RunInflight)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			o := c.opts
			o.Prefix = "t-" + strings.ReplaceAll(c.name, " ", "-")
			o.Timeout = 45 * time.Second
			o.Poll = 5 * time.Millisecond
			res, err := runs[c.name](ctx, o)
			if err != nil {
				t.Fatalf("%v (%+v)", err, res)
			}
			if !res.OK() || res.Completed != res.Expected || res.Expected == 0 {
				t.Fatalf("not all completed: %+v", res)
			}
			for _, n := range res.Notes {
				t.Log(n)
			}
		})
	}
}

// TestIdleMeasures checks that the idle workload reports a rate.
func TestIdleMeasures(t *testing.T) {
	_, rdb := redistest.StartMini(t)
	res, err := RunIdle(context.Background(), rdb, Options{Duration: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := res.Get(MIdleRoundTrips); !ok {
		t.Fatalf("no round trips reported: %+v", res)
	}
}

// TestAggregateRuns checks medians and ranges over runs.
func TestAggregateRuns(t *testing.T) {
	var rs []Result
	for _, v := range []float64{3, 1, 2} {
		r := Result{Workload: "drain", System: SystemDuroworker, Params: "n=1"}
		r.Add(MOrchPerSec, "", v)
		rs = append(rs, r)
	}
	agg := AggregateRuns(rs)
	if len(agg) != 1 || agg[0].Runs != 3 {
		t.Fatalf("%+v", agg)
	}
	m, ok := agg[0].Get(MOrchPerSec)
	if !ok || m.Median != 2 || m.Min != 1 || m.Max != 3 {
		t.Fatalf("%+v", m)
	}
}

// TestEvaluateTargets checks that a target is judged from the medians and
// that targets of cases outside the plan are left out.
func TestEvaluateTargets(t *testing.T) {
	plan := StandardPlan(1)
	var only []Case
	for _, c := range plan {
		if c.ID == CaseDrain {
			only = append(only, c)
		}
	}
	dw := Result{Case: only[0].Name, Workload: WorkloadDrain, System: SystemDuroworker}
	dw.Add(MOrchPerSec, "", 3000)
	dw.Add(MRoundTrips, "", 9)
	aq := Result{Case: only[0].Name, Workload: WorkloadDrain, System: SystemAsynq}
	aq.Add(MOrchPerSec, "", 4000)
	got := map[string]Target{}
	for _, tg := range EvaluateTargets(only, AggregateRuns([]Result{dw, aq})) {
		got[tg.Name] = tg
	}
	if tg := got["drain: vs asynq"]; tg.Status != TargetMet {
		t.Fatalf("vs asynq: %+v", tg)
	}
	if tg := got["drain: vs go-workflows"]; tg.Status != TargetNA {
		t.Fatalf("vs go-workflows: %+v", tg)
	}
	if tg := got["round trips per single-activity orchestration (drain)"]; tg.Status != TargetMissed {
		t.Fatalf("round trips: %+v", tg)
	}
	for name := range got {
		if name == "steady one at a time: p50" {
			t.Fatalf("target of a case outside the plan: %s", name)
		}
	}
}

// TestWriteMarkdown checks that every system gets a column.
func TestWriteMarkdown(t *testing.T) {
	var rs []Result
	for _, sys := range []string{SystemDuroworker, SystemAsynq} {
		r := Result{Case: "drain 10x1", Workload: WorkloadDrain, System: sys}
		r.Add(MOrchPerSec, "", 100)
		rs = append(rs, r)
	}
	var b strings.Builder
	WriteMarkdown(&b, AggregateRuns(rs), nil)
	if !strings.Contains(b.String(), "| drain 10x1 | orch/s |  | 100 |  | 100 |") {
		t.Fatalf("unexpected table:\n%s", b.String())
	}
}
