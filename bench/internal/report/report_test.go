package report

import (
	"strings"
	"testing"

	"github.com/duroworker/duroworker/bench/internal/result"
	"github.com/duroworker/duroworker/bench/internal/workload"
)

// TestEvaluateTargets checks that a target is judged from the medians and
// that targets of cases outside the plan are left out.
func TestEvaluateTargets(t *testing.T) {
	plan := workload.StandardPlan(1)
	var only []workload.Case
	for _, c := range plan {
		if c.ID == workload.CaseDrain {
			only = append(only, c)
		}
	}
	dw := result.Result{Case: only[0].Name, Workload: result.WorkloadDrain, System: result.SystemDuroworker}
	dw.Add(result.MOrchPerSec, "", 3000)
	dw.Add(result.MRoundTrips, "", 9)
	aq := result.Result{Case: only[0].Name, Workload: result.WorkloadDrain, System: result.SystemAsynq}
	aq.Add(result.MOrchPerSec, "", 4000)
	got := map[string]Target{}
	for _, tg := range EvaluateTargets(only, result.AggregateRuns([]result.Result{dw, aq})) {
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
	var rs []result.Result
	for _, sys := range []string{result.SystemDuroworker, result.SystemAsynq} {
		r := result.Result{Case: "drain 10x1", Workload: result.WorkloadDrain, System: sys}
		r.Add(result.MOrchPerSec, "", 100)
		rs = append(rs, r)
	}
	var b strings.Builder
	WriteMarkdown(&b, result.AggregateRuns(rs), nil)
	if !strings.Contains(b.String(), "| drain 10x1 | orch/s |  | 100 |  | 100 |") {
		t.Fatalf("unexpected table:\n%s", b.String())
	}
}

// TestMarkdownAndTargetsUseThePeerAtItsBest: a go-workflows sweep shows in
// the summary table at its best setting (named in the case's row), every
// setting in the sweep table, and the targets judge against the best.
func TestMarkdownAndTargetsUseThePeerAtItsBest(t *testing.T) {
	var only []workload.Case
	for _, c := range workload.StandardPlan(1) {
		if c.ID == workload.CaseDrain {
			only = append(only, c)
		}
	}
	name := only[0].Name
	dw := result.Result{Case: name, Workload: result.WorkloadDrain, System: result.SystemDuroworker}
	dw.Add(result.MOrchPerSec, "", 1200)
	rs := []result.Result{dw}
	for _, v := range []struct {
		variant string
		rate    float64
	}{{"pollers=2", 300}, {"pollers=8", 500}, {"pollers=32", 450}} {
		r := result.Result{Case: name, Workload: result.WorkloadDrain, System: result.SystemGoWorkflows, Variant: v.variant}
		r.Add(result.MOrchPerSec, "", v.rate)
		rs = append(rs, r)
	}
	aggs := result.AggregateRuns(rs)
	targets := EvaluateTargets(only, result.BestOnly(aggs))
	for _, tg := range targets {
		if tg.Name == "drain: vs go-workflows" && (tg.Status != TargetMissed || !strings.Contains(tg.Value, "1200 vs 500 = 2.40x")) {
			t.Fatalf("vs go-workflows judged against %+v, want its best (500)", tg)
		}
	}
	var b strings.Builder
	WriteMarkdown(&b, aggs, targets)
	md := b.String()
	for _, s := range []string{
		"| " + name + " (go-workflows at pollers=8) | orch/s |  | 1200 | 500 |  |",
		"| " + name + " | go-workflows | orch/s | pollers=2: 300 (300–300); pollers=8: 500 (500–500); pollers=32: 450 (450–450) | pollers=8 |",
	} {
		if !strings.Contains(md, s) {
			t.Fatalf("markdown lacks %q:\n%s", s, md)
		}
	}
	var txt strings.Builder
	PrintSweeps(&txt, aggs)
	if !strings.Contains(txt.String(), "pollers=2 300  *pollers=8 500  pollers=32 450") {
		t.Fatalf("sweeps:\n%s", txt.String())
	}
}
