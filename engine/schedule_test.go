package engine

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/duroworker/duroworker/internal/replay"
)

func TestBackoffDelays(t *testing.T) {
	cases := []struct {
		b    Backoff
		want []time.Duration // after failed attempts 1, 2, 3, ...
	}{
		{NoBackoff(), []time.Duration{0, 0}},
		{FixedBackoff(time.Second), []time.Duration{time.Second, time.Second}},
		{LinearBackoff(time.Second, 2500*time.Millisecond), []time.Duration{time.Second, 2 * time.Second, 2500 * time.Millisecond}},
		{ExponentialBackoff(100*time.Millisecond, 2, time.Second), []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second}},
		{ExponentialBackoff(time.Second, 3, 0), []time.Duration{time.Second, 3 * time.Second, 9 * time.Second}},
		{ExponentialBackoff(time.Second, 0.5, 0), []time.Duration{time.Second, time.Second}},
	}
	for _, c := range cases {
		for i, want := range c.want {
			if got := c.b.Delay(i + 1); got != want {
				t.Errorf("%s: delay after attempt %d = %s, want %s", c.b, i+1, got, want)
			}
		}
	}
	// A huge attempt number neither overflows nor loops for long.
	if d := ExponentialBackoff(time.Second, 10, 0).Delay(1 << 20); d <= 0 {
		t.Fatalf("overflowed: %s", d)
	}
}

// bothWaysFresh is bothWays with fresh activities (and so fresh failure
// counters) for each of the two runs.
func bothWaysFresh(t *testing.T, orchs *OrchestrationRegistry) *sim {
	t.Helper()
	var runs [2]*sim
	for i, sticky := range []bool{true, false} {
		runs[i] = newSim(t, orchs, compatActivities(), sticky)
		runs[i].run("O", "", "")
	}
	if a, b := runs[0], runs[1]; a.status != b.status || a.output != b.output || fmt.Sprint(a.stored) != fmt.Sprint(b.stored) {
		t.Fatalf("sticky and replay differ:\n%s %q %v\n%s %q %v", a.status, a.output, a.kinds(), b.status, b.output, b.kinds())
	}
	return runs[0]
}

// Retried activities are futures: two of them run side by side and Join waits
// for both, each with its own attempts and durable backoff timers.
func TestRetriedActivitiesCompose(t *testing.T) {
	orchs, err := NewOrchestrationRegistry().Register("O", func(ctx *OrchestrationContext, in string) (string, error) {
		policy := WithRetry(NewRetryPolicy(4).WithBackoff(FixedBackoff(time.Second)))
		a := ctx.ScheduleActivity("flaky", "fail1", policy)
		b := ctx.ScheduleActivity("flaky", "fail2", policy, WithTag("gpu"))
		out, err := JoinAll(ctx, []*Future[string]{a, b})
		return strings.Join(out, "|"), err
	}).Build()
	if err != nil {
		t.Fatal(err)
	}
	s := bothWaysFresh(t, orchs)
	if s.status != replay.StatusCompleted || s.output != "ok(fail1 after 2)|ok(fail2 after 3)" {
		t.Fatalf("status %s output %q failure %v", s.status, s.output, s.failure)
	}
	if n := strings.Count(strings.Join(s.kinds(), ","), "ActivityScheduled:flaky"); n != 5 {
		t.Fatalf("%d attempts, want 5: %v", n, s.kinds())
	}
}

// A retried activity that loses a Select is cancelled and not tried again,
// even when it was waiting out its backoff.
func TestRetriedActivityLosesSelect(t *testing.T) {
	orchs, err := NewOrchestrationRegistry().Register("O", func(ctx *OrchestrationContext, in string) (string, error) {
		act := ctx.ScheduleActivity("flaky", "fail99", WithRetry(NewRetryPolicy(50).WithBackoff(FixedBackoff(time.Minute))))
		deadline := ctx.ScheduleTimer(150 * time.Second)
		if w := ctx.Select(act, deadline); w != 1 {
			return "", fmt.Errorf("winner %d", w)
		}
		_, err := act.Get()
		return fmt.Sprint(isCancelled(err)), nil
	}).Build()
	if err != nil {
		t.Fatal(err)
	}
	s := bothWaysFresh(t, orchs)
	if s.status != replay.StatusCompleted || s.output != "true" {
		t.Fatalf("status %s output %q failure %v", s.status, s.output, s.failure)
	}
	// Attempts at 0 s, 60 s, 120 s; the deadline at 150 s wins while the
	// third backoff timer (to 180 s) runs: no fourth attempt.
	if n := strings.Count(strings.Join(s.kinds(), ","), "ActivityScheduled:flaky"); n != 3 {
		t.Fatalf("%d attempts, want 3: %v", n, s.kinds())
	}
}

// isCancelled reports whether err is the cancellation of a Select loser.
func isCancelled(err error) bool {
	d, ok := err.(*ErrorDetails)
	return ok && d.Kind == KindCancelled
}

// A retried activity whose attempt is still running when it loses a Select
// has that attempt cancelled in history.
func TestRetriedActivityRunningAttemptIsCancelled(t *testing.T) {
	orchs, err := NewOrchestrationRegistry().Register("O", func(ctx *OrchestrationContext, in string) (string, error) {
		act := ctx.ScheduleActivity("hang", "x", WithRetry(DefaultRetryPolicy()))
		ctx.Select(act, ctx.ScheduleTimer(time.Second))
		return "done", nil
	}).Build()
	if err != nil {
		t.Fatal(err)
	}
	s := bothWaysFresh(t, orchs)
	got := strings.Join(s.kinds(), ",")
	want := "OrchestrationStarted:O,ActivityScheduled:hang,TimerCreated,TimerFired,ActivityCancelRequested,OrchestrationCompleted"
	if got != want {
		t.Fatalf("history %s\nwant    %s", got, want)
	}
}

// When the code changes the retry policy of a running execution, the engine's
// own scheduling of the next attempt meets a history that disagrees: the
// execution fails as nondeterministic, and nothing panics.
func TestRetryMismatchOnReplayIsNondeterminism(t *testing.T) {
	fast := func(ctx *OrchestrationContext, in string) (string, error) {
		return ctx.ScheduleActivity("flaky", "fail1", WithRetry(NewRetryPolicy(3).WithBackoff(NoBackoff()))).Get()
	}
	slow := func(ctx *OrchestrationContext, in string) (string, error) {
		return ctx.ScheduleActivity("flaky", "fail1", WithRetry(NewRetryPolicy(3).WithBackoff(FixedBackoff(time.Second)))).Get()
	}
	d := newDriver(t, fast, false)
	defer d.close()
	res := d.turn(start(""))
	act := res.Activities[0]
	d.turn(act.Completion("", replay.ApplicationError(KindActivityFailed, "boom"))) // history: failure, then attempt 2 at once
	d.fn = slow
	res = d.turn(act.Completion("late", nil)) // replays with the new policy
	if res.Status != replay.StatusFailed || !IsNondeterminism(res.Failure) {
		t.Fatalf("status %s failure %v", res.Status, res.Failure)
	}
	if !strings.Contains(res.Failure.Message, "TimerCreated") {
		t.Fatalf("message does not name the mismatch: %s", res.Failure.Message)
	}
}

func TestInvalidScheduleOptionsFailTheFuture(t *testing.T) {
	d := newDriver(t, func(ctx *OrchestrationContext, in string) (string, error) {
		var errs []string
		for _, f := range []*Future[string]{
			ctx.ScheduleActivity("A", "x", WithRetry(RetryPolicy{})),
			ctx.ScheduleActivity("A", "x", WithTimeout(-time.Second)),
			ctx.ScheduleActivity("A", "x", WithTag("a{b}")),
			ctx.ScheduleSubOrchestration("C", "x", WithVersion("one")),
		} {
			_, err := f.Get()
			errs = append(errs, fmt.Sprint(err))
		}
		return strings.Join(errs, "\n"), nil
	}, true)
	defer d.close()
	res := d.turn(start(""))
	if len(res.Activities) != 0 || len(res.Children) != 0 || len(res.NewEvents) != 2 {
		t.Fatalf("something was scheduled: %+v", res)
	}
	for _, want := range []string{"MaxAttempts must be at least 1", "timeout of activity A is negative", "contains '{'", "not a semver version"} {
		if !strings.Contains(res.Output, want) {
			t.Errorf("output lacks %q:\n%s", want, res.Output)
		}
	}
}

func TestSelectFirstOverASlice(t *testing.T) {
	d := newDriver(t, func(ctx *OrchestrationContext, in string) (string, error) {
		fs := []*Future[string]{ctx.WaitForEvent("a"), ctx.WaitForEvent("b"), ctx.WaitForEvent("c")}
		i := SelectFirst(ctx, fs)
		v, _ := fs[i].Get()
		_, err := fs[0].Get()
		return fmt.Sprintf("%d:%s:%v", i, v, isCancelled(err)), nil
	}, false)
	defer d.close()
	d.turn(start(""))
	res := d.turn(replay.Message{Kind: replay.MessageExternalEvent, Name: "b", Result: "B"})
	if res.Output != "1:B:true" {
		t.Fatalf("output %q", res.Output)
	}
}
