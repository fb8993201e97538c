// Package result is the record of one benchmark run (Result: metrics,
// counts, notes), the names that line up the rows of duroworker and the
// peers in one table (systems, workloads, metrics), and the summary of
// several runs (Aggregate). The duroworker workloads and the peer program
// (bench/peers) both produce Results; the bench command aggregates them.
package result

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync/atomic"
	"time"
)

// Workload names, as the CLI and the peer program spell them.
const (
	WorkloadDrain      = "drain"
	WorkloadSteady     = "steady"
	WorkloadSequential = "sequential"
	WorkloadFanout     = "fanout"
	WorkloadLong       = "long"
	WorkloadTimers     = "timers"
	WorkloadFilter     = "filter"
	WorkloadSessions   = "sessions"
	WorkloadIdle       = "idle"
	WorkloadInflight   = "inflight"
	WorkloadBacklog    = "backlog"
)

// Systems compared by "duroworker bench".
const (
	SystemDuroworker  = "duroworker"
	SystemGoWorkflows = "go-workflows"
	SystemAsynq       = "asynq"
)

// Metric names shared by duroworker and the peers, so that their rows line
// up in one table.
const (
	MOrchPerSec      = "orch/s"            // orchestrations (workflows, tasks) completed per second
	MActPerSec       = "activities/s"      // activities (tasks) completed per second
	MEnqueuePerSec   = "enqueue/s"         // starts per second before processing (drain)
	MElapsed         = "elapsed"           // seconds of the measured phase
	MP50             = "p50"               // milliseconds
	MP95             = "p95"               // milliseconds
	MP99             = "p99"               // milliseconds
	MMax             = "max"               // milliseconds
	MMsPerStep       = "ms/step"           // milliseconds per sequential activity
	MFirst100        = "first100"          // milliseconds for the first 100 steps
	MLast100         = "last100"           // milliseconds for the last 100 steps
	MLastOverFirst   = "last100/first100"  // ratio
	MRoundTrips      = "round trips/orch"  // client-side requests (a pipeline counts once) per orchestration
	MCommands        = "commands/orch"     // server-side total_commands_processed per orchestration, Lua-internal calls included
	MRedisBytes      = "redis bytes/orch"  // used_memory growth per completed orchestration
	MRedisCPU        = "redis cpu/orch"    // microseconds of Redis server CPU per orchestration
	MRedisBusy       = "redis cpu"         // Redis server CPU over the phase, percent of one core
	MProcessCPU      = "process cpu/orch"  // microseconds of CPU of the process running workers and client
	MRSS             = "rss MB"            // VmRSS of the process
	MRSSBaseline     = "rss before MB"     // VmRSS before the workload
	MHeap            = "heap MB"           // Go heap in use
	MGoroutines      = "goroutines"        // goroutines in the process
	MIdleSent        = "sent commands/s"   // commands the worker sent per second (client side)
	MIdleRoundTrips  = "round trips/s"     // client-side round trips per second
	MIdleCommands    = "server commands/s" // server-side commands per second, Lua-internal calls included
	MWorkersUsed     = "workers/session"   // distinct workers that ran one session's activities (max over sessions)
	MSessionsMoved   = "sessions split"    // sessions whose activities ran on more than one worker
	MOffered         = "offered/s"         // offered start rate
	MAchieved        = "achieved/s"        // completions per second over the run
	MFetchP50Ratio   = "p50 ratio"         // filter: p50 with incompatible work over p50 without
	MFilterOrchP50   = "orch fetch p50"    // filter: milliseconds, with incompatible work waiting
	MFilterActP50    = "act fetch p50"     // filter: milliseconds, with incompatible work waiting
	MFirstEnd        = "first completion"  // backlog: milliseconds from the first start to the first completion
	MStartAll        = "all started"       // backlog: milliseconds to make every start call
	MFilterOrchRatio = "orch p50 ratio"
	MFilterActRatio  = "act p50 ratio"
)

// Metric is one measured value.
type Metric struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit,omitempty"`
}

// Result is what one run of one workload on one system measured. The
// duroworker workloads and the peer program (bench/peers) both produce it;
// the CLI merges them into one table.
type Result struct {
	// Case names the benchmark case (a workload with its parameters) in a
	// plan such as "bench all"; results of one case are compared.
	Case     string `json:"case,omitempty"`
	Workload string `json:"workload"`
	System   string `json:"system"`
	// Params are the workload's parameters ("n=2000 k=1").
	Params string `json:"params"`
	// Settings describe how the system was configured (concurrency,
	// polling), so that a reader can judge the comparison.
	Settings string `json:"settings,omitempty"`
	// Variant names the setting of a sweep this run used ("pollers=8"),
	// when a peer runs the same case at several settings; empty otherwise.
	Variant string `json:"variant,omitempty"`
	// Redis is what the Redis server did over the measured window: INFO
	// commandstats deltas and the scripts the system's clients called.
	Redis *RedisCost `json:"redis,omitempty"`
	// Expected and Completed count orchestrations (workflows, tasks);
	// Failed counts those that ended in failure.
	Expected  int64    `json:"expected"`
	Completed int64    `json:"completed"`
	Failed    int64    `json:"failed"`
	Metrics   []Metric `json:"metrics"`
	Notes     []string `json:"notes,omitempty"`
	Error     string   `json:"error,omitempty"`
}

// Add records a metric; NaN and infinite values are dropped.
func (r *Result) Add(name, unit string, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	for i := range r.Metrics {
		if r.Metrics[i].Name == name {
			r.Metrics[i] = Metric{Name: name, Value: v, Unit: unit}
			return
		}
	}
	r.Metrics = append(r.Metrics, Metric{Name: name, Value: v, Unit: unit})
}

// AddDuration records d in milliseconds.
func (r *Result) AddDuration(name string, d time.Duration) {
	r.Add(name, "ms", float64(d)/float64(time.Millisecond))
}

// Get returns the metric called name.
func (r *Result) Get(name string) (float64, bool) {
	for _, m := range r.Metrics {
		if m.Name == name {
			return m.Value, true
		}
	}
	return 0, false
}

// Note adds a free-form remark.
func (r *Result) Note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// OK reports whether the run finished and completed everything it expected.
func (r *Result) OK() bool {
	return r.Error == "" && r.Completed >= r.Expected && r.Failed == 0
}

// Percentiles summarizes a latency sample.
type Percentiles struct {
	N                  int
	P50, P95, P99, Max time.Duration
	Mean               time.Duration
}

// Summarize sorts lat in place and returns its percentiles (nearest rank).
func Summarize(lat []time.Duration) Percentiles {
	if len(lat) == 0 {
		return Percentiles{}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(f float64) time.Duration {
		i := int(math.Ceil(f*float64(len(lat)))) - 1
		return lat[max(0, min(len(lat)-1, i))]
	}
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	return Percentiles{N: len(lat), P50: q(0.50), P95: q(0.95), P99: q(0.99), Max: lat[len(lat)-1], Mean: sum / time.Duration(len(lat))}
}

// AddPercentiles records p50, p95, p99 and max under prefix (e.g. "" or
// "lateness ").
func (r *Result) AddPercentiles(prefix string, p Percentiles) {
	if p.N == 0 {
		return
	}
	r.AddDuration(prefix+MP50, p.P50)
	r.AddDuration(prefix+MP95, p.P95)
	r.AddDuration(prefix+MP99, p.P99)
	r.AddDuration(prefix+MMax, p.Max)
}

// Aggregate is the summary of several runs of one workload on one system.
type Aggregate struct {
	Case     string            `json:"case,omitempty"`
	Workload string            `json:"workload"`
	System   string            `json:"system"`
	Params   string            `json:"params"`
	Settings string            `json:"settings,omitempty"`
	Variant  string            `json:"variant,omitempty"`
	Runs     int               `json:"runs"`
	OKRuns   int               `json:"ok_runs"`
	Metrics  []AggregateMetric `json:"metrics"`
	Notes    []string          `json:"notes,omitempty"`
	Errors   []string          `json:"errors,omitempty"`
	// Redis is the median per orchestration over the runs of every
	// command and script in the runs' RedisCost.
	Redis []CostAggregate `json:"redis,omitempty"`
}

// AggregateMetric is the median and range of a metric over runs.
type AggregateMetric struct {
	Name   string    `json:"name"`
	Unit   string    `json:"unit,omitempty"`
	Median float64   `json:"median"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
	Values []float64 `json:"values"`
}

// Get returns the aggregated metric called name.
func (a *Aggregate) Get(name string) (AggregateMetric, bool) {
	for _, m := range a.Metrics {
		if m.Name == name {
			return m, true
		}
	}
	return AggregateMetric{}, false
}

// AggregateRuns groups results by workload, system and params (in the order
// they first appear) and takes the median, min and max of every metric.
func AggregateRuns(results []Result) []Aggregate {
	var out []Aggregate
	index := map[string]int{}
	values := map[string]map[string][]float64{}
	for _, r := range results {
		key := aggKey(r.Case, r.Workload, r.System, r.Params, r.Variant)
		i, ok := index[key]
		if !ok {
			i = len(out)
			index[key] = i
			out = append(out, Aggregate{Case: r.Case, Workload: r.Workload, System: r.System, Params: r.Params, Settings: r.Settings, Variant: r.Variant})
			values[key] = map[string][]float64{}
		}
		a := &out[i]
		a.Runs++
		if r.OK() {
			a.OKRuns++
		}
		if r.Error != "" {
			a.Errors = append(a.Errors, r.Error)
		}
		for _, n := range r.Notes {
			if !containsShape(a.Notes, n) {
				a.Notes = append(a.Notes, n)
			}
		}
		for _, m := range r.Metrics {
			if _, seen := values[key][m.Name]; !seen {
				a.Metrics = append(a.Metrics, AggregateMetric{Name: m.Name, Unit: m.Unit})
			}
			values[key][m.Name] = append(values[key][m.Name], m.Value)
		}
	}
	costs := map[string][]*RedisCost{}
	for _, r := range results {
		key := aggKey(r.Case, r.Workload, r.System, r.Params, r.Variant)
		costs[key] = append(costs[key], r.Redis)
	}
	for i := range out {
		key := aggKey(out[i].Case, out[i].Workload, out[i].System, out[i].Params, out[i].Variant)
		out[i].Redis = aggregateCosts(costs[key])
		for j := range out[i].Metrics {
			m := &out[i].Metrics[j]
			m.Values = values[key][m.Name]
			m.Median, m.Min, m.Max = medianMinMax(m.Values)
		}
	}
	return out
}

func aggKey(c, workload, system, params, variant string) string {
	return c + "\x00" + workload + "\x00" + system + "\x00" + params + "\x00" + variant
}

func medianMinMax(v []float64) (med, lo, hi float64) {
	if len(v) == 0 {
		return 0, 0, 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		med = s[n/2]
	} else {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return med, s[0], s[n-1]
}

// containsShape reports whether list has a note of the same kind as s: the
// same text before its first colon (or the same text), numbers aside. Of
// the notes of several runs, the first run's is kept.
func containsShape(list []string, s string) bool {
	shape := func(x string) string {
		if head, _, ok := strings.Cut(x, ":"); ok {
			x = head
		}
		return strings.Map(func(r rune) rune {
			if (r >= '0' && r <= '9') || r == '.' {
				return -1
			}
			return r
		}, x)
	}
	for _, x := range list {
		if shape(x) == shape(s) {
			return true
		}
	}
	return false
}

// FormatValue prints v with a precision suited to its size.
func FormatValue(v float64) string {
	a := math.Abs(v)
	switch {
	case v == math.Trunc(v) && a < 1e9:
		return fmt.Sprintf("%.0f", v)
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

// DecodeResults parses the JSON the peer program prints: one Result or an
// array of them.
func DecodeResults(data []byte) ([]Result, error) {
	data = []byte(strings.TrimSpace(string(data)))
	if len(data) == 0 {
		return nil, fmt.Errorf("no output")
	}
	if data[0] == '[' {
		var rs []Result
		err := json.Unmarshal(data, &rs)
		return rs, err
	}
	var r Result
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, err
	}
	return []Result{r}, nil
}

// AddThroughput records the elapsed seconds of a phase and, per second,
// the orchestrations completed and the activities run in it.
func (r *Result) AddThroughput(elapsed time.Duration, completed, activities int64) {
	secs := elapsed.Seconds()
	r.Add(MElapsed, "s", secs)
	if secs > 0 {
		r.Add(MOrchPerSec, "", float64(completed)/secs)
		r.Add(MActPerSec, "", float64(activities)/secs)
	}
}

// AddSteps records the mean step time of one sequential orchestration from
// the times (UnixNano) its steps ran and, with 101 steps or more, the first
// 100 steps against the last 100 (sticky replay: a turn must not cost more
// as the history grows).
func (r *Result) AddSteps(steps []atomic.Int64) {
	k := len(steps)
	if k < 2 {
		return
	}
	t := make([]int64, k)
	for i := range steps {
		t[i] = steps[i].Load()
		if t[i] == 0 {
			r.Note("step %d has no recorded time", i)
			return
		}
	}
	ms := func(a, b int) float64 { return float64(t[b]-t[a]) / 1e6 }
	r.Add(MMsPerStep, "ms", ms(0, k-1)/float64(k-1))
	if k < 101 {
		return
	}
	first, last := ms(0, 100), ms(k-101, k-1)
	r.Add(MFirst100, "ms", first)
	r.Add(MLast100, "ms", last)
	if first > 0 {
		r.Add(MLastOverFirst, "", last/first)
	}
	if k < 201 {
		r.Note("k=%d < 201: the first and last 100 steps overlap", k)
	}
}
