package result

import (
	"strings"
	"sync/atomic"
	"testing"
)

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

// TestAddStepsNotesOverlap: with fewer than 201 steps the first and last
// 100 overlap, which the result says (for the peers too: they share this).
func TestAddStepsNotesOverlap(t *testing.T) {
	steps := make([]atomic.Int64, 150)
	for i := range steps {
		steps[i].Store(int64(i+1) * 1e6) // one step per millisecond
	}
	var r Result
	r.AddSteps(steps)
	if v, ok := r.Get(MMsPerStep); !ok || v != 1 {
		t.Fatalf("ms/step %v %v", v, ok)
	}
	if v, ok := r.Get(MLastOverFirst); !ok || v != 1 {
		t.Fatalf("last/first %v %v", v, ok)
	}
	if len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "k=150 < 201") {
		t.Fatalf("notes %q", r.Notes)
	}
	r = Result{}
	r.AddSteps(make([]atomic.Int64, 250))
	if len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "no recorded time") {
		t.Fatalf("unrecorded steps: notes %q", r.Notes)
	}
}
