package report

import (
	"fmt"

	"github.com/duroworker/duroworker/bench/internal/result"
	"github.com/duroworker/duroworker/bench/internal/workload"
)

// Target is one of the performance targets, judged on the medians
// of a plan's results.
type Target struct {
	Name   string `json:"name"`
	Goal   string `json:"goal"`
	Value  string `json:"value"`
	Status string `json:"status"` // "met", "missed" or "n/a" (a peer was not run)
	Detail string `json:"detail,omitempty"`
}

// Target statuses.
const (
	TargetMet    = "met"
	TargetMissed = "missed"
	TargetNA     = "n/a"
)

// EvaluateTargets judges the targets from the aggregated results of
// the cases of plan (matched by case name). Targets whose cases are not in
// the plan are left out; a case of the plan without the value (it failed)
// misses its target.
func EvaluateTargets(plan []workload.Case, aggs []result.Aggregate) []Target {
	names := map[string]string{}
	for _, c := range plan {
		names[c.ID] = c.Name
	}
	inPlan := func(ids ...string) bool {
		for _, id := range ids {
			if _, ok := names[id]; !ok {
				return false
			}
		}
		return true
	}
	get := func(caseID, system, metric string) (result.AggregateMetric, bool) {
		for i := range aggs {
			if aggs[i].Case == names[caseID] && aggs[i].System == system {
				return aggs[i].Get(metric)
			}
		}
		return result.AggregateMetric{}, false
	}
	var out []Target
	noValue := func(name, goal, why string) {
		out = append(out, Target{Name: name, Goal: goal, Status: TargetMissed, Detail: why})
	}
	rng := func(v result.AggregateMetric, unit string) string {
		return fmt.Sprintf("%s%s (%s–%s)", result.FormatValue(v.Median), unit, result.FormatValue(v.Min), result.FormatValue(v.Max))
	}
	// limit judges a duroworker metric of a case against a bound.
	limit := func(caseID, metric, name, goal string, bound float64, atMost bool, unit string) {
		if !inPlan(caseID) {
			return
		}
		v, ok := get(caseID, result.SystemDuroworker, metric)
		if !ok {
			noValue(name, goal, "no value: the run failed")
			return
		}
		t := Target{Name: name, Goal: goal, Value: rng(v, unit)}
		met := v.Median >= bound
		if atMost {
			met = v.Median <= bound
		}
		t.Status = TargetMet
		if !met {
			t.Status = TargetMissed
			if bound != 0 {
				t.Detail = fmt.Sprintf("%.2fx the bound", v.Median/bound)
			}
		}
		out = append(out, t)
	}
	// versus judges a duroworker metric against factor times a peer's.
	versus := func(caseID, metric, peerCase, peer, peerMetric, name, goal string, factor float64) {
		if !inPlan(caseID, peerCase) {
			return
		}
		dw, ok := get(caseID, result.SystemDuroworker, metric)
		if !ok {
			noValue(name, goal, "no value: the run failed")
			return
		}
		pv, ok := get(peerCase, peer, peerMetric)
		if !ok {
			out = append(out, Target{Name: name, Goal: goal, Value: rng(dw, ""), Status: TargetNA, Detail: peer + " not run (--vs)"})
			return
		}
		r := dw.Median / pv.Median
		t := Target{Name: name, Goal: goal, Value: fmt.Sprintf("%s vs %s = %.2fx", result.FormatValue(dw.Median), result.FormatValue(pv.Median), r)}
		if r >= factor {
			t.Status = TargetMet
		} else {
			t.Status = TargetMissed
			t.Detail = fmt.Sprintf("%.0f%% of the goal", 100*r/factor)
		}
		out = append(out, t)
	}

	versus(workload.CaseDrain, result.MOrchPerSec, workload.CaseDrain, result.SystemGoWorkflows, result.MOrchPerSec, "drain: vs go-workflows", ">= 3x go-workflows orch/s", 3)
	versus(workload.CaseDrain, result.MOrchPerSec, workload.CaseDrain, result.SystemAsynq, result.MOrchPerSec, "drain: vs asynq", ">= 60% of asynq tasks/s", 0.6)
	versus(workload.CaseFanout1000, result.MActPerSec, workload.CaseDrain, result.SystemAsynq, result.MActPerSec, names[workload.CaseFanout1000]+": activities/s vs asynq", ">= asynq plain tasks/s (drain)", 1)
	for _, id := range []string{workload.CaseSeq200, workload.CaseLong} {
		limit(id, result.MMsPerStep, names[id]+": ms per step", "<= 0.3 ms", 0.3, true, " ms")
		limit(id, result.MLastOverFirst, names[id]+": last 100 / first 100 steps", "<= 1.2", 1.2, true, "")
	}
	limit(workload.CaseSteadyOne, result.MP50, "steady one at a time: p50", "< 0.7 ms", 0.7, true, " ms")
	limit(workload.CaseSteadyOne, result.MP99, "steady one at a time: p99", "< 1.5 ms", 1.5, true, " ms")
	limit(workload.CaseSteadyRate, result.MP99, names[workload.CaseSteadyRate]+": p99", "< 10 ms", 10, true, " ms")
	limit(workload.CaseDrain, result.MRoundTrips, "round trips per single-activity orchestration (drain)", "<= 4", 4, true, "")
	limit(workload.CaseDrain, result.MRedisCPU, "Redis CPU per single-activity orchestration (drain)", "<= 120 µs", 120, true, " µs")
	limit(workload.CaseDrain, result.MProcessCPU, "worker process CPU per single-activity orchestration (drain)", "<= 200 µs", 200, true, " µs")
	limit(workload.CaseSteadyOne, result.MRoundTrips, "round trips per single-activity orchestration (one at a time)", "<= 8", 8, true, "")
	limit(workload.CaseIdle, result.MIdleSent, "idle worker: commands sent/s", "<= 5", 5, true, "")
	limit(workload.CaseInflight, result.MRSS, names[workload.CaseInflight]+" in flight: process RSS", "< 200 MB", 200, true, " MB")
	if inPlan(workload.CaseDrain) {
		if v, ok := get(workload.CaseDrain, result.SystemDuroworker, result.MRedisBytes); ok {
			out = append(out, Target{Name: "Redis memory per completed orchestration (drain)", Goal: "reported", Value: rng(v, " B"), Status: TargetMet})
		} else {
			noValue("Redis memory per completed orchestration (drain)", "reported", "INFO memory unavailable or the run failed")
		}
	}
	limit(workload.CaseFilter, result.MFilterOrchRatio, "filter: orchestration fetch p50 with/without", "<= 1.2", 1.2, true, "x")
	limit(workload.CaseFilter, result.MFilterActRatio, "filter: activity fetch p50 with/without", "<= 1.2", 1.2, true, "x")
	limit(workload.CaseSessions, result.MWorkersUsed, "sessions: workers that ran the session", "== 1", 1, true, "")
	return out
}
