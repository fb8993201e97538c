package workload

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/duroworker/duroworker/engine"
)

// seqOrchestration runs K no-op activities one after the other; input is K.
func (e *env) seqOrchestration(ctx *engine.OrchestrationContext, input string) (string, error) {
	k, err := strconv.Atoi(input)
	if err != nil {
		return "", err
	}
	for i := 0; i < k; i++ {
		if _, err := ctx.ScheduleActivity(actNoop, strconv.Itoa(i)).Get(); err != nil {
			return "", err
		}
	}
	return "ok", nil
}

// fanoutRetryPolicy is the policy of the fanout workload with Retry: the
// engine's default (3 attempts, exponential backoff from 100 ms).
func fanoutRetryPolicy() engine.RetryPolicy { return engine.DefaultRetryPolicy() }

// fanoutOrchestration schedules K no-op activities at once and joins them.
// Input is "K" or "K/retry". With retry, every activity has the retry policy
// fanoutRetryPolicy: a failed one is scheduled again after the policy's
// durable backoff, until it succeeds or runs out of attempts.
func (e *env) fanoutOrchestration(ctx *engine.OrchestrationContext, input string) (string, error) {
	ks, mode, _ := strings.Cut(input, "/")
	k, err := strconv.Atoi(ks)
	if err != nil {
		return "", err
	}
	var opts []engine.ActivityOption
	if mode == "retry" {
		opts = append(opts, engine.WithRetry(fanoutRetryPolicy()))
	}
	futures := make([]*engine.Future[string], k)
	for i := range futures {
		futures[i] = ctx.ScheduleActivity(actNoop, strconv.Itoa(i), opts...)
	}
	if _, err := engine.JoinAll(ctx, futures); err != nil {
		return "", err
	}
	return "ok", nil
}

// timerOrchestration sleeps (input: milliseconds) on a durable timer, notes
// how late the orchestration resumed, then runs one activity.
func (e *env) timerOrchestration(ctx *engine.OrchestrationContext, input string) (string, error) {
	ms, err := strconv.Atoi(input)
	if err != nil {
		return "", err
	}
	d := time.Duration(ms) * time.Millisecond
	due := ctx.Now().Add(d)
	if _, err := ctx.ScheduleTimer(d).Get(); err != nil {
		return "", err
	}
	if !ctx.IsReplaying() {
		// Measurement only: the wall clock never steers the orchestration.
		e.lateness.Record(ctx.InstanceID(), time.Since(due))
	}
	return ctx.ScheduleActivity(actNoop, "").Get()
}

// sessionOrchestration schedules K activities on one session (named after
// the instance) at once and joins them.
func (e *env) sessionOrchestration(ctx *engine.OrchestrationContext, input string) (string, error) {
	k, err := strconv.Atoi(input)
	if err != nil {
		return "", err
	}
	session := "s-" + ctx.InstanceID()
	futures := make([]*engine.Future[string], k)
	for i := range futures {
		futures[i] = ctx.ScheduleActivity(actSession, strconv.Itoa(i), engine.WithSession(session))
	}
	if _, err := engine.JoinAll(ctx, futures); err != nil {
		return "", err
	}
	return "ok", nil
}

// holdOrchestration runs one activity, then waits for the event "release":
// an orchestration in flight.
func (e *env) holdOrchestration(ctx *engine.OrchestrationContext, input string) (string, error) {
	if _, err := ctx.ScheduleActivity(actNoop, "").Get(); err != nil {
		return "", err
	}
	return ctx.WaitForEvent("release").Get()
}

var errInjected = errors.New("injected failure (first attempt)")

// noopActivity returns its input. For the sequential workload with one
// orchestration it notes when each step ran; for fanout with FailEvery it
// fails the first attempt of every FailEvery-th activity.
func (e *env) noopActivity(ctx *engine.ActivityContext, input string) (string, error) {
	e.activities.Add(1)
	if len(e.steps) > 0 {
		if i, err := strconv.Atoi(input); err == nil && i >= 0 && i < len(e.steps) {
			e.steps[i].Store(time.Now().UnixNano())
		}
	}
	if e.opts.FailEvery > 0 && !e.warming.Load() {
		if i, err := strconv.Atoi(input); err == nil && i%e.opts.FailEvery == 0 {
			if _, failed := e.failedOnce.LoadOrStore(ctx.InstanceID()+"/"+input, true); !failed {
				return "", errInjected
			}
		}
	}
	return input, nil
}

// sessionActivity notes which worker ran it for its session.
func (e *env) sessionActivity(ctx *engine.ActivityContext, input string) (string, error) {
	e.activities.Add(1)
	e.mu.Lock()
	set := e.sessions[ctx.SessionID()]
	if set == nil {
		set = map[string]bool{}
		e.sessions[ctx.SessionID()] = set
	}
	set[ctx.WorkerID()] = true
	e.mu.Unlock()
	return input, nil
}
