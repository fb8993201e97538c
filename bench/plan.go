package bench

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/redis/go-redis/v9"
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
	both := []string{SystemGoWorkflows, SystemAsynq}
	gw := []string{SystemGoWorkflows}
	cases := []Case{
		{ID: CaseDrain, Workload: WorkloadDrain, Opts: Options{N: n(2000), K: 1}, Peers: both},
		{ID: CaseSteadyOne, Workload: WorkloadSteady, Opts: Options{N: n(2000)}, Peers: both},
		{ID: CaseSteadyRate, Workload: WorkloadSteady, Opts: Options{Rate: 1000, Duration: time.Duration(float64(10*time.Second) * scale)}, Peers: both},
		{ID: CaseSeq200, Workload: WorkloadSequential, Opts: Options{N: 1, K: 200}, Peers: gw},
		{ID: CaseSeqMany, Workload: WorkloadSequential, Opts: Options{N: n(100), K: 20}, Peers: gw},
		{ID: CaseLong, Workload: WorkloadLong, Opts: Options{N: 1, K: 1000}, Peers: gw},
		{ID: CaseFanout1000, Workload: WorkloadFanout, Opts: Options{N: 1, K: n(1000), Retry: true}, Peers: gw},
		{ID: CaseFanoutMany, Workload: WorkloadFanout, Opts: Options{N: n(100), K: 10, Retry: true}, Peers: gw},
		{ID: CaseTimers, Workload: WorkloadTimers, Opts: Options{N: n(1000), Delay: time.Second}, Peers: gw},
		{ID: CaseFilter, Workload: WorkloadFilter, Filter: FilterOptions{Incompatible: n(100_000), Samples: n(2000)}},
		{ID: CaseSessions, Workload: WorkloadSessions, Opts: Options{N: 1, K: n(500), Workers: 3}},
		{ID: CaseIdle, Workload: WorkloadIdle, Opts: Options{Duration: time.Duration(float64(10*time.Second) * scale)}},
		{ID: CaseInflight, Workload: WorkloadInflight, Opts: Options{N: n(10_000)}},
	}
	for i := range cases {
		cases[i].Name = cases[i].DefaultName()
	}
	return cases
}

// DefaultName describes the case from its workload and parameters.
func (c Case) DefaultName() string {
	o := c.Opts
	switch c.Workload {
	case WorkloadDrain:
		return fmt.Sprintf("drain %dx%d", o.N, max(o.K, 1))
	case WorkloadSteady:
		if o.Rate > 0 {
			return fmt.Sprintf("steady %g/s %s", o.Rate, o.Duration)
		}
		return fmt.Sprintf("steady one-at-a-time n=%d", o.N)
	case WorkloadSequential, WorkloadLong:
		return fmt.Sprintf("%s %dx%d", c.Workload, o.N, o.K)
	case WorkloadFanout:
		s := fmt.Sprintf("fanout %dx%d", o.N, o.K)
		if o.Retry {
			s += " retry"
		}
		return s
	case WorkloadTimers:
		return fmt.Sprintf("timers %dx%s", o.N, o.Delay)
	case WorkloadFilter:
		return fmt.Sprintf("filter %d waiting", c.Filter.Incompatible)
	case WorkloadSessions:
		return fmt.Sprintf("sessions %dx%d on %d workers", o.N, o.K, o.Workers)
	case WorkloadIdle:
		return fmt.Sprintf("idle worker %s", o.Duration)
	case WorkloadInflight:
		return fmt.Sprintf("inflight %d", o.N)
	}
	return c.Workload
}

// Run runs the duroworker side of the case on rdb.
func (c Case) Run(ctx context.Context, rdb *redis.Client) (Result, error) {
	var r Result
	var err error
	switch c.Workload {
	case WorkloadDrain:
		r, err = RunDrain(ctx, rdb, c.Opts)
	case WorkloadSteady:
		r, err = RunSteady(ctx, rdb, c.Opts)
	case WorkloadSequential:
		r, err = RunSequential(ctx, rdb, c.Opts)
	case WorkloadLong:
		r, err = RunLong(ctx, rdb, c.Opts)
	case WorkloadFanout:
		r, err = RunFanout(ctx, rdb, c.Opts)
	case WorkloadTimers:
		r, err = RunTimers(ctx, rdb, c.Opts)
	case WorkloadFilter:
		f := c.Filter
		if f.Progress == nil && c.Opts.Progress != nil {
			step := int64(0)
			f.Progress = func(string) { step++; c.Opts.Progress(step, 5) }
		}
		r, err = RunFilterResult(ctx, rdb, f)
	case WorkloadSessions:
		r, err = RunSessions(ctx, rdb, c.Opts)
	case WorkloadIdle:
		r, err = RunIdle(ctx, rdb, c.Opts)
	case WorkloadInflight:
		r, err = RunInflight(ctx, rdb, c.Opts)
	default:
		return Result{}, fmt.Errorf("unknown workload %q", c.Workload)
	}
	r.Case = c.Name
	return r, err
}
