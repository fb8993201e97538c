package result

import (
	"strings"
	"testing"
)

// sweepResults are runs of one case: duroworker and go-workflows at three
// poller settings, of which pollers=32 failed once.
func sweepResults() []Result {
	var rs []Result
	add := func(system, variant string, v float64, fail bool) {
		r := Result{Case: "drain 10x1", Workload: WorkloadDrain, System: system, Params: "n=10 k=1", Variant: variant, Expected: 10, Completed: 10}
		r.Add(MOrchPerSec, "", v)
		if fail {
			r.Error = "boom"
		}
		rs = append(rs, r)
	}
	for run := 0; run < 3; run++ {
		add(SystemDuroworker, "", 1000, false)
		add(SystemGoWorkflows, "pollers=2", 300+float64(run), false)
		add(SystemGoWorkflows, "pollers=8", 500+float64(run), false)
		add(SystemGoWorkflows, "pollers=32", 900, run == 1)
	}
	return rs
}

// TestSweepsPickTheBestCompletedVariant: variants aggregate apart, the
// best is by the workload's primary metric, and a variant with a failed
// run is never the best, however fast.
func TestSweepsPickTheBestCompletedVariant(t *testing.T) {
	aggs := AggregateRuns(sweepResults())
	if len(aggs) != 4 {
		t.Fatalf("%d aggregates, want 4 (variants apart)", len(aggs))
	}
	sw := Sweeps(aggs)
	if len(sw) != 1 {
		t.Fatalf("sweeps %+v", sw)
	}
	s := sw[0]
	if s.System != SystemGoWorkflows || s.Metric != MOrchPerSec || len(s.Variants) != 3 {
		t.Fatalf("sweep %+v", s)
	}
	if s.Best != "pollers=8" {
		t.Fatalf("best %q, want pollers=8 (pollers=32 failed a run)", s.Best)
	}
	if v := s.Variants[1]; v.Median != 501 || v.Min != 500 || v.Max != 502 || !v.OK {
		t.Fatalf("pollers=8 %+v", v)
	}
	if s.Variants[2].OK {
		t.Fatal("pollers=32 reported OK with a failed run")
	}
	best := BestOnly(aggs)
	if len(best) != 2 || best[1].Variant != "pollers=8" || best[0].System != SystemDuroworker {
		t.Fatalf("BestOnly %+v", best)
	}
}

// TestSweepsLowerIsBetter: for latency and step time the lowest median wins.
func TestSweepsLowerIsBetter(t *testing.T) {
	var rs []Result
	for _, v := range []struct {
		variant string
		ms      float64
	}{{"pollers=2", 1.4}, {"pollers=4", 1.1}, {"pollers=16", 1.3}} {
		r := Result{Case: "sequential 1x200", Workload: WorkloadSequential, System: SystemGoWorkflows, Params: "n=1 k=200", Variant: v.variant}
		r.Add(MMsPerStep, "ms", v.ms)
		rs = append(rs, r)
	}
	if s := Sweeps(AggregateRuns(rs)); len(s) != 1 || s[0].Best != "pollers=4" {
		t.Fatalf("%+v", s)
	}
	if m, hi := Primary(WorkloadSteady, "rate=1000/s duration=10s"); m != MP99 || hi {
		t.Fatalf("steady at a rate ranks by %s higher=%v", m, hi)
	}
	if m, hi := Primary(WorkloadSteady, "one at a time n=10"); m != MP50 || hi {
		t.Fatalf("steady one at a time ranks by %s higher=%v", m, hi)
	}
}

// TestAggregateCostsPerOrchestration: commandstats and script calls become
// medians per orchestration over the runs; a command missing from a run
// counts 0 there; commands come first by time, scripts after by calls.
func TestAggregateCostsPerOrchestration(t *testing.T) {
	mk := func(per, hsetCalls, hsetUsec int64, extra bool) Result {
		c := &RedisCost{Per: per, Commands: []CommandCost{{Name: "evalsha", Calls: 4 * per, Usec: 100 * per}, {Name: "hset", Calls: hsetCalls, Usec: hsetUsec}}}
		if extra {
			c.Commands = append(c.Commands, CommandCost{Name: "publish", Calls: 3 * per, Usec: 30 * per})
		}
		c.Scripts = []ScriptCost{{SHA: "aaaa", Name: "ack_orch", Calls: 2 * per}, {SHA: "bbbbbbbbbbbbbbbb", Calls: per}}
		return Result{Case: "c", Workload: WorkloadDrain, System: SystemDuroworker, Redis: c}
	}
	rs := []Result{mk(10, 100, 200, false), mk(20, 400, 400, true), mk(10, 300, 300, true), {Case: "c", Workload: WorkloadDrain, System: SystemDuroworker}}
	aggs := AggregateRuns(rs)
	got := map[string]CostAggregate{}
	var order []string
	for _, c := range aggs[0].Redis {
		got[c.Kind+" "+c.Name] = c
		order = append(order, c.Kind+" "+c.Name)
	}
	if c := got["command hset"]; c.Calls != 20 || c.Usec != 20 {
		t.Fatalf("hset %+v, want medians 20 calls and 20 µs per orch", c)
	}
	if c := got["command publish"]; c.Calls != 3 || c.Usec != 30 {
		t.Fatalf("publish %+v, want median of 0, 3, 3 calls", c)
	}
	if c := got["script ack_orch"]; c.Calls != 2 || c.Usec != 0 {
		t.Fatalf("ack_orch %+v", c)
	}
	if _, ok := got["script sha bbbbbbbbbbbb"]; !ok {
		t.Fatalf("an unnamed script is not labelled by its SHA: %v", order)
	}
	want := []string{"command evalsha", "command publish", "command hset", "script ack_orch", "script sha bbbbbbbbbbbb"}
	if strings.Join(order, ",") != strings.Join(want, ",") {
		t.Fatalf("order %v, want %v", order, want)
	}

	var text, md strings.Builder
	WriteCosts(&text, aggs, 2, false)
	for _, s := range []string{"c · duroworker: 27 commands per orchestration", "evalsha 4/100, publish 3/30\n", "scripts (calls/orch): ack_orch 2, sha bbbbbbbbbbbb 1"} {
		if !strings.Contains(text.String(), s) {
			t.Fatalf("text lacks %q:\n%s", s, text.String())
		}
	}
	WriteCosts(&md, aggs, 0, true)
	for _, s := range []string{"| hset | 20 | 20 | 1 |", "| script ack_orch | 2 | | |"} {
		if !strings.Contains(md.String(), s) {
			t.Fatalf("markdown lacks %q:\n%s", s, md.String())
		}
	}
}
