package result

import "testing"

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
