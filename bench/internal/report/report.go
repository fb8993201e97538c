// Package report turns the results of a benchmark plan into what "duroworker
// bench" prints and writes: the header (machine, Redis and its persistence,
// peers), the tables of medians with min-max, the performance targets as
// met or missed, the Markdown of bench/RESULTS.md, and the JSON file that
// "bench report" reads again.
package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/duroworker/duroworker/bench/internal/result"
)

// File is what --out writes and "bench report" reads.
type File struct {
	Header     Header             `json:"header"`
	Command    string             `json:"command"`
	Runs       int                `json:"runs"`
	Plan       []PlanCase         `json:"plan"`
	Results    []result.Result    `json:"results"`
	Aggregates []result.Aggregate `json:"aggregates"`
	// Sweeps rank the variants of a peer run at several settings.
	Sweeps  []result.Sweep `json:"sweeps,omitempty"`
	Targets []Target       `json:"targets,omitempty"`
}

// PlanCase identifies a case of the plan in the JSON file, so that "bench
// report" can judge the targets again.
type PlanCase struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Workload string `json:"workload"`
}

// PrintAggregates writes the aggregates as a table (a row per metric, with
// min–max when runs > 1), then the settings, notes and errors of each case
// and system.
func PrintAggregates(out io.Writer, aggs []result.Aggregate, runs int) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	rangeHdr := "MIN–MAX"
	if runs == 1 {
		rangeHdr = ""
	}
	fmt.Fprintf(tw, "CASE\tSYSTEM\tMETRIC\tMEDIAN\t%s\tUNIT\n", rangeHdr)
	for _, a := range aggs {
		first := true
		label := a.Case
		if label == "" {
			label = a.Workload + " " + a.Params
		}
		sys := a.System
		if a.Variant != "" {
			sys += " (" + a.Variant + ")"
		}
		status := ""
		if a.OKRuns < a.Runs {
			status = fmt.Sprintf(" (%d/%d runs failed)", a.Runs-a.OKRuns, a.Runs)
		}
		for _, m := range a.Metrics {
			c, s := "", ""
			if first {
				c, s = label, sys+status
				first = false
			}
			rng := ""
			if runs > 1 {
				rng = result.FormatValue(m.Min) + "–" + result.FormatValue(m.Max)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c, s, m.Name, result.FormatValue(m.Median), rng, m.Unit)
		}
		if first {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t\t\n", label, sys+status)
		}
	}
	_ = tw.Flush()
	fmt.Fprintln(out)
	// Settings, notes and errors, once per case and system.
	for _, a := range aggs {
		if a.Settings == "" && len(a.Notes) == 0 && len(a.Errors) == 0 {
			continue
		}
		sys := a.System
		if a.Variant != "" {
			sys += " (" + a.Variant + ")"
		}
		fmt.Fprintf(out, "%s · %s:", a.Case, sys)
		if a.Settings != "" {
			fmt.Fprintf(out, " %s", a.Settings)
		}
		fmt.Fprintln(out)
		for _, n := range a.Notes {
			fmt.Fprintf(out, "    note: %s\n", n)
		}
		for _, e := range a.Errors {
			fmt.Fprintf(out, "    error: %s\n", e)
		}
	}
}

// PrintTargets writes the targets as a table.
func PrintTargets(out io.Writer, targets []Target) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tGOAL\tMEDIAN (MIN–MAX)\tSTATUS\tDETAIL")
	for _, t := range targets {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.Name, t.Goal, t.Value, strings.ToUpper(t.Status), t.Detail)
	}
	_ = tw.Flush()
}

// PrintSweeps writes, for every case a peer ran at several settings, each
// setting's ranking metric and the best one.
func PrintSweeps(out io.Writer, aggs []result.Aggregate) {
	sweeps := result.Sweeps(aggs)
	if len(sweeps) == 0 {
		return
	}
	fmt.Fprintln(out, "sweeps (median of the metric that ranks them; * = best):")
	for _, s := range sweeps {
		fmt.Fprintf(out, "    %s · %s, %s:", s.Case, s.System, s.Metric)
		if s.Unit != "" {
			fmt.Fprintf(out, " (%s)", s.Unit)
		}
		for _, v := range s.Variants {
			val := "failed"
			if v.OK {
				val = result.FormatValue(v.Median)
			}
			mark := ""
			if v.Variant == s.Best {
				mark = "*"
			}
			fmt.Fprintf(out, "  %s%s %s", mark, v.Variant, val)
		}
		if s.Best == "" {
			fmt.Fprint(out, "  (no setting completed every run)")
		}
		fmt.Fprintln(out)
	}
	fmt.Fprintln(out)
}
