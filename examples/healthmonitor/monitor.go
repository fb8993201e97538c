package healthmonitor

import (
	"fmt"
	"slices"
	"time"

	"github.com/duroworker/duroworker/engine"
)

// Name is the orchestration's registered name. It is the same for every
// version and must never change: instances, clients and history refer to it.
const Name = "examples::orchestration::health-monitor"

// HealthCheck is the name of the activity that checks a target.
const HealthCheck = "examples::activity::health-check"

// Versions of the monitor, in the order they were released.
const (
	// V1_0_0 is the original version, run by Monitor.
	V1_0_0 = "1.0.0"
	// V1_0_1 is the health-check hot fix, run by Monitor_1_0_1.
	V1_0_1 = "1.0.1"
	// V1_0_2 is the longer interval, run by Monitor_1_0_2.
	V1_0_2 = "1.0.2"
	// LatestVersion is the highest registered version.
	LatestVersion = V1_0_2
)

// DefaultInterval is the pause between two checks when Input.IntervalMS is
// not positive, as in the versioning guide (versions 1.0.0 and 1.0.1; 1.0.2
// makes it 5 times longer).
const DefaultInterval = 60 * time.Second

// Input is the monitor's input and the state it carries from one execution
// (one cycle) to the next through continue-as-new.
type Input struct {
	// Target is what to check.
	Target string `json:"target"`
	// IntervalMS is the pause after each check, in milliseconds; not
	// positive means DefaultInterval. Version 1.0.2 waits 5 times as long.
	IntervalMS int64 `json:"interval_ms"`
	// Cycles is how many cycles to run before completing; not positive
	// means forever.
	Cycles int `json:"cycles"`
	// Done is how many cycles have finished.
	Done int `json:"done"`
}

func (in Input) interval() time.Duration {
	if in.IntervalMS <= 0 {
		return DefaultInterval
	}
	return time.Duration(in.IntervalMS) * time.Millisecond
}

// Monitor is the original health monitor.
//
// Version 1.0.0 - Original implementation:
//   - runs the health check once, with no retry and no timeout;
//   - waits Input.IntervalMS (default 60 s) on a durable timer;
//   - continues as new with Done+1, or completes after Cycles cycles.
func Monitor(ctx *engine.OrchestrationContext, in Input) (string, error) {
	ctx.TraceInfo("[v1.0.0] Starting health check cycle", "target", in.Target, "cycle", in.Done+1)
	result, err := ctx.ScheduleActivity(HealthCheck, in.Target).Get()
	if err != nil {
		return "", err
	}
	if _, err := ctx.ScheduleTimer(in.interval()).Get(); err != nil {
		return "", err
	}
	return endCycle(ctx, "[v1.0.0]", in, result)
}

// Monitor_1_0_1 is the hot fix of the health check.
//
// Version 1.0.1 - Changes from 1.0.0:
//   - the health check runs with a retry policy: up to 3 attempts
//     with exponential backoff, each bounded by a 30 s timeout (1.0.0 had no
//     retry and no timeout);
//   - traces carry the [v1.0.1] prefix.
//
// Running 1.0.0 instances switch to it at their next continue-as-new.
func Monitor_1_0_1(ctx *engine.OrchestrationContext, in Input) (string, error) {
	ctx.TraceInfo("[v1.0.1] Starting health check cycle", "target", in.Target, "cycle", in.Done+1)
	result, err := ctx.ScheduleActivity(HealthCheck, in.Target, healthCheckOptions()...).Get()
	if err != nil {
		return "", err
	}
	if _, err := ctx.ScheduleTimer(in.interval()).Get(); err != nil {
		return "", err
	}
	return endCycle(ctx, "[v1.0.1]", in, result)
}

// Monitor_1_0_2 checks less often.
//
// Version 1.0.2 - Changes from 1.0.1:
//   - increased timer interval: 5 times Input.IntervalMS (the default
//     60 s becomes 300 s);
//   - keeps the 1.0.1 retry policy and 30 s timeout of the health check;
//   - traces carry the [v1.0.2] prefix.
func Monitor_1_0_2(ctx *engine.OrchestrationContext, in Input) (string, error) {
	ctx.TraceInfo("[v1.0.2] Starting health check cycle", "target", in.Target, "cycle", in.Done+1)
	result, err := ctx.ScheduleActivity(HealthCheck, in.Target, healthCheckOptions()...).Get()
	if err != nil {
		return "", err
	}
	if _, err := ctx.ScheduleTimer(5 * in.interval()).Get(); err != nil {
		return "", err
	}
	return endCycle(ctx, "[v1.0.2]", in, result)
}

// healthCheckOptions are the hot fix of 1.0.1: 3 attempts, 30 s each.
func healthCheckOptions() []engine.ActivityOption {
	return []engine.ActivityOption{engine.WithRetry(engine.NewRetryPolicy(3)), engine.WithTimeout(30 * time.Second)}
}

// endCycle completes the monitor after its last cycle, or continues as new,
// letting the registry's policy choose the next execution's version.
func endCycle(ctx *engine.OrchestrationContext, prefix string, in Input, result string) (string, error) {
	in.Done++
	if in.Cycles > 0 && in.Done >= in.Cycles {
		ctx.TraceInfo(prefix+" Health monitor finished", "target", in.Target, "cycles", in.Done)
		return fmt.Sprintf("%s %d of %d cycles done for %s, last check: %s", prefix, in.Done, in.Cycles, in.Target, result), nil
	}
	ctx.TraceInfo(prefix+" Completed iteration, continuing...", "target", in.Target, "done", in.Done)
	return engine.ContinueAsNewTyped(ctx, in)
}

// Versions returns the monitor's versions in increasing order.
func Versions() []string { return []string{V1_0_0, V1_0_1, V1_0_2} }

// Register registers every version of the monitor up to and including upTo
// ("1.0.0", "1.0.1" or "1.0.2"; empty means LatestVersion) on b, in
// increasing order, with the default policy (Latest). It panics on any other
// upTo, which is a programming error.
//
// Register(b, "1.0.0") is an old deployment, Register(b, "1.0.2") an upgraded
// one: a rolling upgrade runs both at once.
func Register(b *engine.OrchestrationRegistryBuilder, upTo string) *engine.OrchestrationRegistryBuilder {
	if upTo == "" {
		upTo = LatestVersion
	}
	last := slices.Index(Versions(), upTo)
	if last < 0 {
		panic(fmt.Sprintf("healthmonitor.Register: unknown version %q (want one of %v)", upTo, Versions()))
	}
	// Default version (1.0.0): RegisterTyped.
	engine.RegisterTyped(b, Name, Monitor)
	// Explicit versions: RegisterVersionedTyped.
	if last >= 1 {
		engine.RegisterVersionedTyped(b, Name, V1_0_1, Monitor_1_0_1)
	}
	if last >= 2 {
		engine.RegisterVersionedTyped(b, Name, V1_0_2, Monitor_1_0_2)
	}
	return b
}

// Activities registers the HealthCheck activity on b. It is a deterministic
// fake that answers "healthy: <target>" and fails on an empty target.
func Activities(b *engine.ActivityRegistryBuilder) *engine.ActivityRegistryBuilder {
	return engine.RegisterActivityTyped(b, HealthCheck, checkHealth)
}

func checkHealth(ctx *engine.ActivityContext, target string) (string, error) {
	if target == "" {
		return "", fmt.Errorf("no target to check")
	}
	return "healthy: " + target, nil
}
