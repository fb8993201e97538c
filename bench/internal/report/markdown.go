package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/duroworker/duroworker/bench/internal/result"
)

// markdownMetrics are the metrics shown per workload in the Markdown
// summary, in order; nil shows every metric.
var markdownMetrics = map[string][]string{
	result.WorkloadDrain:      {result.MOrchPerSec, result.MRoundTrips, result.MCommands, result.MRedisCPU, result.MProcessCPU, result.MRedisBytes, result.MEnqueuePerSec},
	result.WorkloadSteady:     {result.MP50, result.MP95, result.MP99, result.MMax, result.MOffered, result.MAchieved, result.MRoundTrips, result.MRedisCPU, result.MProcessCPU},
	result.WorkloadSequential: {result.MMsPerStep, result.MFirst100, result.MLast100, result.MLastOverFirst, result.MActPerSec, result.MRoundTrips, result.MRedisCPU, result.MProcessCPU},
	result.WorkloadLong:       {result.MMsPerStep, result.MFirst100, result.MLast100, result.MLastOverFirst, result.MActPerSec, result.MRoundTrips, result.MRedisCPU, result.MProcessCPU},
	result.WorkloadFanout:     {result.MActPerSec, result.MElapsed, result.MRoundTrips, result.MRedisCPU, result.MProcessCPU},
	result.WorkloadTimers:     {"lateness " + result.MP50, "lateness " + result.MP95, "lateness " + result.MP99, "lateness " + result.MMax, result.MOrchPerSec, result.MRoundTrips},
	result.WorkloadSessions:   {result.MActPerSec, result.MWorkersUsed, result.MSessionsMoved, result.MRoundTrips},
	result.WorkloadBacklog:    {result.MFirstEnd, result.MP50, result.MP99, result.MMax, result.MOrchPerSec, result.MStartAll, result.MRoundTrips, result.MRedisCPU, result.MProcessCPU},
	result.WorkloadInflight:   {result.MRSS, result.MRSSBaseline, result.MHeap, result.MGoroutines, result.MElapsed, result.MRedisBytes, result.MRoundTrips},
}

// WriteMarkdown writes the aggregates as one Markdown table (a row per
// case and metric, a column per system: median with min–max; a peer run at
// several settings at its best one, named in the row of the case), the
// sweeps, and the targets as a last table.
func WriteMarkdown(w io.Writer, all []result.Aggregate, targets []Target) {
	systems := []string{result.SystemDuroworker, result.SystemGoWorkflows, result.SystemAsynq}
	aggs := result.BestOnly(all)
	var order []string
	by := map[string]map[string]*result.Aggregate{}
	for i := range aggs {
		a := &aggs[i]
		c := a.Case
		if c == "" {
			c = a.Workload + " " + a.Params
		}
		if by[c] == nil {
			order = append(order, c)
			by[c] = map[string]*result.Aggregate{}
		}
		if by[c][a.System] == nil { // the first params: the case's own
			by[c][a.System] = a
		}
	}
	fmt.Fprintf(w, "| case | metric | unit | %s |\n", strings.Join(systems, " | "))
	fmt.Fprintf(w, "|---|---|---|%s\n", strings.Repeat("---|", len(systems)))
	for _, c := range order {
		ss := by[c]
		var any *result.Aggregate
		for _, s := range systems {
			if ss[s] != nil {
				any = ss[s]
				break
			}
		}
		if any == nil {
			continue
		}
		names := markdownMetrics[any.Workload]
		if names == nil {
			for _, m := range any.Metrics {
				names = append(names, m.Name)
			}
		}
		first := true
		for _, n := range names {
			cells := make([]string, len(systems))
			unit, have := "", false
			for i, s := range systems {
				a := ss[s]
				if a == nil {
					continue
				}
				m, ok := a.Get(n)
				if !ok {
					continue
				}
				have, unit = true, m.Unit
				cells[i] = result.FormatValue(m.Median)
				if a.Runs > 1 {
					cells[i] += fmt.Sprintf(" (%s–%s)", result.FormatValue(m.Min), result.FormatValue(m.Max))
				}
			}
			if !have {
				continue
			}
			label := ""
			if first {
				label = c
				for _, s := range systems {
					if a := ss[s]; a != nil && a.Variant != "" {
						label += fmt.Sprintf(" (%s at %s)", s, a.Variant)
					}
				}
				first = false
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s |\n", label, n, unit, strings.Join(cells, " | "))
		}
		for _, s := range systems {
			if a := ss[s]; a != nil && a.OKRuns < a.Runs {
				fmt.Fprintf(w, "| | **%s: %d of %d runs with errors** | | %s |\n", s, a.Runs-a.OKRuns, a.Runs, strings.Repeat(" |", len(systems)-1))
			}
		}
	}
	if sweeps := result.Sweeps(all); len(sweeps) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| case | system | metric | setting: median (min–max) | best |")
		fmt.Fprintln(w, "|---|---|---|---|---|")
		for _, s := range sweeps {
			var cells []string
			for _, v := range s.Variants {
				val := "failed"
				if v.OK {
					val = fmt.Sprintf("%s (%s–%s)", result.FormatValue(v.Median), result.FormatValue(v.Min), result.FormatValue(v.Max))
				}
				cells = append(cells, v.Variant+": "+val)
			}
			sys := s.System
			if s.Params != "" {
				sys += " " + s.Params
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", s.Case, sys, strings.TrimSpace(s.Metric+" "+s.Unit), strings.Join(cells, "; "), s.Best)
		}
	}
	if len(targets) == 0 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| target | goal | measured: median (min–max) | status | detail |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for _, t := range targets {
		fmt.Fprintf(w, "| %s | %s | %s | **%s** | %s |\n", t.Name, t.Goal, t.Value, t.Status, t.Detail)
	}
}
