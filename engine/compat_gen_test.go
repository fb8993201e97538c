package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// compatRecord is a history stored by an earlier engine API, replayed by
// TestReplayStoredHistories against today's orchestration code.
type compatRecord struct {
	Scenario string   `json:"scenario"`
	Written  string   `json:"written_by"`
	Status   string   `json:"status"`
	Output   string   `json:"output"`
	History  []string `json:"history"`
}

// compatActivities are the activities of the compatibility scenarios. flaky
// fails until its input's attempt budget is spent; hang never completes.
func compatActivities() map[string]ActivityFunc {
	calls := map[string]int{}
	return map[string]ActivityFunc{
		"echo": func(ctx *ActivityContext, in string) (string, error) {
			return fmt.Sprintf("echo(%s,tag=%s,session=%s)", in, ctx.Tag(), ctx.SessionID()), nil
		},
		"flaky": func(ctx *ActivityContext, in string) (string, error) {
			calls[in]++
			var failures int
			fmt.Sscanf(in, "fail%d", &failures)
			if calls[in] <= failures {
				return "", fmt.Errorf("flaky %s call %d", in, calls[in])
			}
			return fmt.Sprintf("ok(%s after %d)", in, calls[in]), nil
		},
		"hang": func(*ActivityContext, string) (string, error) { return "", errNeverCompletes },
	}
}

func outcome(v string, err error) string {
	if err != nil {
		var d *ErrorDetails
		if errors.As(err, &d) {
			return "err(" + string(d.Kind) + ":" + d.Message + ")"
		}
		return "err(" + err.Error() + ")"
	}
	return v
}

func writeCompat(t *testing.T, dir, scenario string, fn OrchestrationFunc) {
	t.Helper()
	orchs, err := NewOrchestrationRegistry().Register("Compat", fn).Build()
	if err != nil {
		t.Fatal(err)
	}
	s := newSim(t, orchs, compatActivities(), true)
	s.run("Compat", "", "in")
	rec := compatRecord{Scenario: scenario, Written: "engine API 0.1 (commit ec76972)", Status: string(s.status), Output: s.output, History: s.stored}
	if s.failure != nil {
		rec.Output = s.failure.Message
	}
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, scenario+".json"), append(data, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestWriteCompatHistories writes testdata/compat with the API of engine 0.1.
// It ran once, at commit ec76972, to produce the stored histories; it is kept
// so that the record of how they were made stays in the tree.
func TestWriteCompatHistories(t *testing.T) {
	if os.Getenv("DUROWORKER_WRITE_COMPAT") == "" {
		t.Skip("set DUROWORKER_WRITE_COMPAT=1 to rewrite testdata/compat")
	}
	dir := filepath.Join("testdata", "compat")
	writeCompat(t, dir, "activities", func(ctx *OrchestrationContext, in string) (string, error) {
		a := ctx.ScheduleActivity("echo", "a")
		b := ctx.ScheduleActivityOnSession("echo", "b", "s1")
		c := ctx.ScheduleActivityWithOptions("echo", "c", ActivityOptions{Tag: "gpu", SessionID: "s2"})
		d := ScheduleActivityTyped[string](ctx, "echo", 42)
		ctx.Join(a, b, c, d)
		var parts []string
		for _, f := range []*Future[string]{a, b, c, d} {
			parts = append(parts, outcome(f.Get()))
		}
		return strings.Join(parts, "|"), nil
	})
	writeCompat(t, dir, "retry-success", func(ctx *OrchestrationContext, in string) (string, error) {
		out, err := ctx.ScheduleActivityWithRetry("flaky", "fail2", NewRetryPolicy(4).WithBackoff(FixedBackoff(time.Second)))
		return outcome(out, err), nil
	})
	writeCompat(t, dir, "retry-exhausted", func(ctx *OrchestrationContext, in string) (string, error) {
		out, err := ctx.ScheduleActivityWithRetryOnSession("flaky", "fail9", DefaultRetryPolicy(), "s1")
		next := ctx.ScheduleActivity("echo", "after")
		v, _ := next.Get()
		return outcome(out, err) + "|" + v, nil
	})
	writeCompat(t, dir, "retry-timeout", func(ctx *OrchestrationContext, in string) (string, error) {
		out, err := ctx.ScheduleActivityWithRetry("hang", "x", NewRetryPolicy(3).WithTimeout(5*time.Second))
		return outcome(out, err), nil
	})
	writeCompat(t, dir, "retry-timeout-not-reached", func(ctx *OrchestrationContext, in string) (string, error) {
		out, err := ctx.ScheduleActivityWithRetryOptions("flaky", "fail1", NewRetryPolicy(2).WithTimeout(time.Minute).WithBackoff(LinearBackoff(time.Second, 10*time.Second)),
			ActivityOptions{Tag: "gpu"})
		typed, terr := ScheduleActivityWithRetryTyped[string](ctx, "echo", "typed", NewRetryPolicy(2))
		return outcome(out, err) + "|" + outcome(typed, terr), nil
	})
	writeCompat(t, dir, "suborchestrations", func(ctx *OrchestrationContext, in string) (string, error) {
		a := ctx.ScheduleSubOrchestration("Child", "a")
		b := ctx.ScheduleSubOrchestrationWithID("Child", "fixed-id", "b")
		c := ctx.ScheduleSubOrchestrationVersioned("Child", "2.0", "c")
		d := ctx.ScheduleSubOrchestrationWithOptions("Child", "d", SubOrchestrationOptions{InstanceID: "id-d", Version: "1.1.0"})
		e := ScheduleSubOrchestrationTyped[string](ctx, "Child", "e", SubOrchestrationOptions{})
		ctx.StartOrchestration("Detached", "det-1", "x")
		ctx.StartOrchestrationVersioned("Detached", "3.0.0", "det-2", "y")
		ctx.Join(a, b, c, d, e)
		var parts []string
		for _, f := range []*Future[string]{a, b, c, d, e} {
			parts = append(parts, outcome(f.Get()))
		}
		return strings.Join(parts, "|"), nil
	})
	writeCompat(t, dir, "select", func(ctx *OrchestrationContext, in string) (string, error) {
		act := ctx.ScheduleActivity("hang", "slow")
		timer := ctx.ScheduleTimer(time.Minute)
		ev := ctx.WaitForEvent("never")
		w := ctx.Select(act, timer, ev)
		fast := ctx.ScheduleActivity("echo", "fast")
		t2 := ctx.ScheduleTimer(time.Hour)
		w2 := ctx.Select(t2, fast)
		return fmt.Sprintf("%d,%d,%s", w, w2, outcome(fast.Get())), nil
	})
}
