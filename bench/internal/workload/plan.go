package workload

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/bench/internal/result"
)

// Case is one benchmark case: a workload with its parameters, and the peer
// systems that run it too.
type Case struct {
	// ID is a stable key ("drain", "steady-1"); targets refer to it.
	ID string
	// Name is the display name ("drain 2000x1").
	Name     string
	Workload string
	Opts     Options
	Filter   FilterOptions
	// Peers lists the peer systems that implement this case.
	Peers []string
}

// Case IDs of the standard plan.
const (
	CaseDrain      = "drain"
	CaseSteadyOne  = "steady-1"
	CaseSteadyRate = "steady-1000"
	CaseSeq200     = "seq-200"
	CaseSeqMany    = "seq-many"
	CaseLong       = "long"
	CaseFanout1000 = "fanout-1000"
	CaseFanoutMany = "fanout-many"
	CaseTimers     = "timers"
	CaseFilter     = "filter"
	CaseSessions   = "sessions"
	CaseIdle       = "idle"
	CaseInflight   = "inflight"
	CaseBacklog    = "backlog"
)

// StandardPlan is what "duroworker bench all" runs: every workload at the
// sizes the targets name. scale (0 < scale <= 1) shrinks the
// counts for a quicker run; sizes that a target names are kept when scale is
// 1.
func StandardPlan(scale float64) []Case {
	if scale <= 0 || scale > 1 {
		scale = 1
	}
	n := func(v int) int { return max(1, int(math.Round(float64(v)*scale))) }
	cases := []Case{
		{ID: CaseDrain, Workload: result.WorkloadDrain, Opts: Options{N: n(2000), K: 1}},
		{ID: CaseSteadyOne, Workload: result.WorkloadSteady, Opts: Options{N: n(2000)}},
		{ID: CaseSteadyRate, Workload: result.WorkloadSteady, Opts: Options{Rate: 1000, Duration: time.Duration(float64(10*time.Second) * scale)}},
		{ID: CaseSeq200, Workload: result.WorkloadSequential, Opts: Options{N: 1, K: 200}},
		{ID: CaseSeqMany, Workload: result.WorkloadSequential, Opts: Options{N: n(100), K: 20}},
		{ID: CaseLong, Workload: result.WorkloadLong, Opts: Options{N: 1, K: 1000}},
		{ID: CaseFanout1000, Workload: result.WorkloadFanout, Opts: Options{N: 1, K: n(1000), Retry: true}},
		{ID: CaseFanoutMany, Workload: result.WorkloadFanout, Opts: Options{N: n(100), K: 10, Retry: true}},
		{ID: CaseTimers, Workload: result.WorkloadTimers, Opts: Options{N: n(1000), Delay: time.Second}},
		{ID: CaseFilter, Workload: result.WorkloadFilter, Filter: FilterOptions{Incompatible: n(100_000), Samples: n(2000)}},
		{ID: CaseSessions, Workload: result.WorkloadSessions, Opts: Options{N: 1, K: n(500), Workers: 3}},
		{ID: CaseIdle, Workload: result.WorkloadIdle, Opts: Options{Duration: time.Duration(float64(10*time.Second) * scale)}},
		{ID: CaseInflight, Workload: result.WorkloadInflight, Opts: Options{N: n(10_000)}},
		{ID: CaseBacklog, Workload: result.WorkloadBacklog, Opts: Options{N: n(100_000)}},
	}
	for i := range cases {
		cases[i].Name = cases[i].DefaultName()
		cases[i].Peers = Peers(cases[i].Workload)
	}
	return cases
}

// Peers returns the peer systems whose program (bench/peers) implements
// workload: go-workflows and asynq for drain and steady, go-workflows for
// sequential, long, fanout and timers.
func Peers(workload string) []string {
	switch workload {
	case result.WorkloadDrain, result.WorkloadSteady:
		return []string{result.SystemGoWorkflows, result.SystemAsynq}
	case result.WorkloadSequential, result.WorkloadFanout, result.WorkloadLong, result.WorkloadTimers:
		return []string{result.SystemGoWorkflows}
	}
	return nil
}

// DefaultName describes the case from its workload and parameters.
func (c Case) DefaultName() string {
	o := c.Opts
	switch c.Workload {
	case result.WorkloadDrain:
		return fmt.Sprintf("drain %dx%d", o.N, max(o.K, 1))
	case result.WorkloadSteady:
		if o.Rate > 0 {
			return fmt.Sprintf("steady %g/s %s", o.Rate, o.Duration)
		}
		return fmt.Sprintf("steady one-at-a-time n=%d", o.N)
	case result.WorkloadSequential, result.WorkloadLong:
		return fmt.Sprintf("%s %dx%d", c.Workload, o.N, o.K)
	case result.WorkloadFanout:
		s := fmt.Sprintf("fanout %dx%d", o.N, o.K)
		if o.Retry {
			s += " retry"
		}
		return s
	case result.WorkloadTimers:
		return fmt.Sprintf("timers %dx%s", o.N, o.Delay)
	case result.WorkloadFilter:
		return fmt.Sprintf("filter %d waiting", c.Filter.Incompatible)
	case result.WorkloadSessions:
		return fmt.Sprintf("sessions %dx%d on %d workers", o.N, o.K, o.Workers)
	case result.WorkloadIdle:
		return fmt.Sprintf("idle worker %s", o.Duration)
	case result.WorkloadInflight:
		return fmt.Sprintf("inflight %d", o.N)
	case result.WorkloadBacklog:
		return fmt.Sprintf("backlog %d starts", o.N)
	}
	return c.Workload
}

// runners are the duroworker workloads that take Options, by name.
var runners = map[string]func(context.Context, *redis.Client, Options) (result.Result, error){
	result.WorkloadDrain:      runDrain,
	result.WorkloadSteady:     runSteady,
	result.WorkloadSequential: runSequential,
	result.WorkloadLong:       runLong,
	result.WorkloadFanout:     runFanout,
	result.WorkloadTimers:     runTimers,
	result.WorkloadSessions:   runSessions,
	result.WorkloadIdle:       runIdle,
	result.WorkloadInflight:   runInflight,
	result.WorkloadBacklog:    runBacklog,
}

// Run runs the duroworker side of the case on rdb.
func (c Case) Run(ctx context.Context, rdb *redis.Client) (result.Result, error) {
	var r result.Result
	var err error
	if run, ok := runners[c.Workload]; ok {
		r, err = run(ctx, rdb, c.Opts)
	} else if c.Workload == result.WorkloadFilter {
		f := c.Filter
		if f.Progress == nil && c.Opts.Progress != nil {
			step := int64(0)
			f.Progress = func(string) { step++; c.Opts.Progress(step, 5) }
		}
		r, err = runFilterResult(ctx, rdb, f)
	} else {
		return result.Result{}, fmt.Errorf("unknown workload %q", c.Workload)
	}
	r.Case = c.Name
	return r, err
}
