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
