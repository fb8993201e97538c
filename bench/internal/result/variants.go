package result

import "strings"

// Primary returns the metric that ranks the runs of a workload on one
// system (the one its targets judge) and whether higher is better: orch/s
// for drain, activities/s for fanout, ms/step for sequential and long, p50
// for steady one at a time and p99 at a fixed rate (params with "rate="),
// lateness p99 for timers. It ranks the variants of a sweep.
func Primary(workload, params string) (metric string, higherBetter bool) {
	switch workload {
	case WorkloadFanout, WorkloadSessions:
		return MActPerSec, true
	case WorkloadSequential, WorkloadLong:
		return MMsPerStep, false
	case WorkloadSteady:
		if strings.Contains(params, "rate=") {
			return MP99, false
		}
		return MP50, false
	case WorkloadTimers:
		return "lateness " + MP99, false
	}
	return MOrchPerSec, true
}

// Sweep is the variants of one case on one system (a peer run at several
// settings) ranked by the workload's Primary metric.
type Sweep struct {
	Case     string         `json:"case"`
	Params   string         `json:"params"`
	System   string         `json:"system"`
	Metric   string         `json:"metric"`
	Unit     string         `json:"unit,omitempty"`
	Variants []SweepVariant `json:"variants"`
	higher   bool
	// Best is the variant with the best median of Metric among those whose
	// runs all completed ("" when none did).
	Best string `json:"best"`
}

// SweepVariant is one variant's Primary metric over its runs.
type SweepVariant struct {
	Variant string  `json:"variant"`
	Median  float64 `json:"median"`
	Min     float64 `json:"min"`
	Max     float64 `json:"max"`
	// OK is set when every run of the variant completed.
	OK bool `json:"ok"`
}

// Sweeps lists, for every case, system and params run at variants (a
// peer's settings), each variant's Primary metric and the best one, in
// the order the aggregates first appear. Params that differ (a peer's
// fan-out with its retries off beside the case's retries on) are separate
// sweeps.
func Sweeps(aggs []Aggregate) []Sweep {
	var out []Sweep
	index := map[string]int{}
	for i := range aggs {
		a := &aggs[i]
		if a.Variant == "" {
			continue
		}
		key := a.Case + "\x00" + a.Workload + "\x00" + a.System + "\x00" + a.Params
		j, ok := index[key]
		if !ok {
			metric, higher := Primary(a.Workload, a.Params)
			j = len(out)
			index[key] = j
			out = append(out, Sweep{Case: a.Case, System: a.System, Params: a.Params, Metric: metric, higher: higher})
		}
		s := &out[j]
		v := SweepVariant{Variant: a.Variant}
		if m, ok := a.Get(s.Metric); ok {
			v.Median, v.Min, v.Max, v.OK = m.Median, m.Min, m.Max, a.OKRuns == a.Runs
			s.Unit = m.Unit
		}
		s.Variants = append(s.Variants, v)
	}
	for i := range out {
		s := &out[i]
		higher := s.higher
		best := -1
		for k, v := range s.Variants {
			if !v.OK {
				continue
			}
			if best < 0 || (higher && v.Median > s.Variants[best].Median) || (!higher && v.Median < s.Variants[best].Median) {
				best = k
			}
		}
		if best >= 0 {
			s.Best = s.Variants[best].Variant
		}
	}
	return out
}

// BestOnly returns aggs with one aggregate per case, system and params:
// of the variants of a sweep, only the best one (the first when none
// completed every run). Aggregates without a variant pass unchanged. The
// targets and the Markdown summary compare against a peer at its best.
func BestOnly(aggs []Aggregate) []Aggregate {
	best := map[string]string{}
	for _, s := range Sweeps(aggs) {
		best[s.Case+"\x00"+s.System+"\x00"+s.Params] = s.Best
	}
	var out []Aggregate
	seen := map[string]bool{}
	for _, a := range aggs {
		key := a.Case + "\x00" + a.System + "\x00" + a.Params
		b, swept := best[key]
		if a.Variant != "" && swept {
			if b == "" {
				if seen[key] {
					continue
				}
			} else if a.Variant != b {
				continue
			}
		}
		seen[key] = true
		out = append(out, a)
	}
	return out
}
