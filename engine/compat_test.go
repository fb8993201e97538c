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

	"github.com/duroworker/duroworker/internal/replay"
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

// compatScenarios are the orchestrations of testdata/compat written with
// today's API. The stored histories were written at commit 448e00b by the same
// orchestrations in the API of engine 0.1 (ScheduleActivityWithRetry,
// ScheduleActivityOnSession, ScheduleSubOrchestrationWithID,
// StartOrchestration, ...); see that commit's engine/compat_gen_test.go.
var compatScenarios = map[string]OrchestrationFunc{
	"activities": func(ctx *OrchestrationContext, in string) (string, error) {
		fs := []*Future[string]{
			ctx.ScheduleActivity("echo", "a"),
			ctx.ScheduleActivity("echo", "b", WithSession("s1")),
			ctx.ScheduleActivity("echo", "c", WithTag("gpu"), WithSession("s2")),
			ScheduleActivityTyped[string](ctx, "echo", 42),
		}
		JoinAll(ctx, fs)
		var parts []string
		for _, f := range fs {
			parts = append(parts, outcome(f.Get()))
		}
		return strings.Join(parts, "|"), nil
	},
	"retry-success": func(ctx *OrchestrationContext, in string) (string, error) {
		return outcome(ctx.ScheduleActivity("flaky", "fail2", WithRetry(NewRetryPolicy(4).WithBackoff(FixedBackoff(time.Second)))).Get()), nil
	},
	"retry-exhausted": func(ctx *OrchestrationContext, in string) (string, error) {
		out, err := ctx.ScheduleActivity("flaky", "fail9", WithRetry(DefaultRetryPolicy()), WithSession("s1")).Get()
		v, _ := ctx.ScheduleActivity("echo", "after").Get()
		return outcome(out, err) + "|" + v, nil
	},
	"retry-timeout": func(ctx *OrchestrationContext, in string) (string, error) {
		return outcome(ctx.ScheduleActivity("hang", "x", WithRetry(NewRetryPolicy(3)), WithTimeout(5*time.Second)).Get()), nil
	},
	"retry-timeout-not-reached": func(ctx *OrchestrationContext, in string) (string, error) {
		out, err := ctx.ScheduleActivity("flaky", "fail1", WithTag("gpu"), WithTimeout(time.Minute),
			WithRetry(NewRetryPolicy(2).WithBackoff(LinearBackoff(time.Second, 10*time.Second)))).Get()
		typed, terr := ScheduleActivityTyped[string](ctx, "echo", "typed", WithRetry(NewRetryPolicy(2))).Get()
		return outcome(out, err) + "|" + outcome(typed, terr), nil
	},
	"suborchestrations": func(ctx *OrchestrationContext, in string) (string, error) {
		fs := []*Future[string]{
			ctx.ScheduleSubOrchestration("Child", "a"),
			ctx.ScheduleSubOrchestration("Child", "b", WithInstanceID("fixed-id")),
			ctx.ScheduleSubOrchestration("Child", "c", WithVersion("2.0")),
			ctx.ScheduleSubOrchestration("Child", "d", WithInstanceID("id-d"), WithVersion("1.1.0")),
			ScheduleSubOrchestrationTyped[string](ctx, "Child", "e"),
		}
		ctx.ScheduleSubOrchestration("Detached", "x", Detached(), WithInstanceID("det-1"))
		ctx.ScheduleSubOrchestration("Detached", "y", Detached(), WithInstanceID("det-2"), WithVersion("3.0.0"))
		JoinAll(ctx, fs)
		var parts []string
		for _, f := range fs {
			parts = append(parts, outcome(f.Get()))
		}
		return strings.Join(parts, "|"), nil
	},
	"select": func(ctx *OrchestrationContext, in string) (string, error) {
		act := ctx.ScheduleActivity("hang", "slow")
		timer := ctx.ScheduleTimer(time.Minute)
		ev := ctx.WaitForEvent("never")
		w := ctx.Select(act, timer, ev)
		fast := ctx.ScheduleActivity("echo", "fast")
		t2 := ctx.ScheduleTimer(time.Hour)
		w2 := ctx.Select(t2, fast)
		return fmt.Sprintf("%d,%d,%s", w, w2, outcome(fast.Get())), nil
	},
}

func loadCompat(t *testing.T) []compatRecord {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "compat", "*.json"))
	if err != nil || len(files) != len(compatScenarios) {
		t.Fatalf("testdata/compat: %d files for %d scenarios (%v)", len(files), len(compatScenarios), err)
	}
	var recs []compatRecord
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var r compatRecord
		if err := json.Unmarshal(data, &r); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		recs = append(recs, r)
	}
	return recs
}

// sameAction compares what an orchestration decided, leaving out when and
// by which engine it was recorded and the free-text reason of a cancel.
func sameAction(a, b replay.Event) bool {
	a.Time, b.Time, a.Engine, b.Engine, a.Reason, b.Reason = 0, 0, "", "", "", ""
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func isDelivery(k replay.EventKind) bool {
	switch k {
	case replay.EventOrchestrationStarted, replay.EventActivityCompleted, replay.EventActivityFailed, replay.EventTimerFired, replay.EventExternalEvent,
		replay.EventSubOrchestrationCompleted, replay.EventSubOrchestrationFailed, replay.EventQueueEventDelivered:
		return true
	}
	return false
}

// TestReplayStoredHistories replays histories written by the engine 0.1 API
// with today's code: as a whole (an execution that ended must end the same
// way, without new events) and cut after every delivered event (an execution
// in flight during an upgrade must take exactly the decisions the old code
// took next).
func TestReplayStoredHistories(t *testing.T) {
	for _, rec := range loadCompat(t) {
		t.Run(rec.Scenario, func(t *testing.T) {
			fn := compatScenarios[rec.Scenario]
			if fn == nil {
				t.Fatalf("no orchestration for scenario %q", rec.Scenario)
			}
			h, err := replay.DecodeHistory(rec.History)
			if err != nil {
				t.Fatal(err)
			}
			info := replay.ExecutionInfo{InstanceID: "inst-1", ExecutionID: 1, Name: "Compat", Version: h[0].Version}
			replay := func(prefix []replay.Event) *replay.TurnResult {
				t.Helper()
				x, err := replay.NewExecutor(bind(fn), info, prefix, replay.ExecutorOptions{})
				if err != nil {
					t.Fatal(err)
				}
				defer x.Close()
				res, err := x.Turn(time.UnixMilli(h[len(h)-1].Time+1), nil)
				if err != nil {
					t.Fatal(err)
				}
				return res
			}
			whole := replay(h)
			if string(whole.Status) != rec.Status || whole.Output != rec.Output || len(whole.NewEvents) != 0 {
				t.Fatalf("whole replay: status %s output %q, %d new events; stored %s %q (failure %v)",
					whole.Status, whole.Output, len(whole.NewEvents), rec.Status, rec.Output, whole.Failure)
			}
			for k := 1; k < len(h); k++ {
				if !isDelivery(h[k-1].Kind) {
					continue
				}
				res := replay(h[:k])
				for i, ev := range res.NewEvents {
					if k+i >= len(h) || !sameAction(ev, h[k+i]) {
						t.Fatalf("cut after event %d: new event %d is %+v, stored history has %+v", k, i, ev, h[min(k+i, len(h)-1)])
					}
				}
				if next := k + len(res.NewEvents); next < len(h) && !isDelivery(h[next].Kind) {
					t.Fatalf("cut after event %d: the code decided %d events, stored history has %s next", k, len(res.NewEvents), h[next].Kind)
				}
			}
		})
	}
}

// TestScenariosWriteTheStoredHistories runs each scenario from scratch on
// today's code, with and without the replay cache: it must write the stored
// history again, action for action, and produce the same output.
func TestScenariosWriteTheStoredHistories(t *testing.T) {
	for _, rec := range loadCompat(t) {
		t.Run(rec.Scenario, func(t *testing.T) {
			orchs, err := NewOrchestrationRegistry().Register("Compat", compatScenarios[rec.Scenario]).Build()
			if err != nil {
				t.Fatal(err)
			}
			for _, sticky := range []bool{true, false} {
				s := newSim(t, orchs, compatActivities(), sticky)
				s.run("Compat", "", "in")
				if string(s.status) != rec.Status || s.output != rec.Output {
					t.Fatalf("sticky=%v: status %s output %q; stored %s %q", sticky, s.status, s.output, rec.Status, rec.Output)
				}
				got, _ := replay.DecodeHistory(s.stored)
				want, _ := replay.DecodeHistory(rec.History)
				if len(got) != len(want) {
					t.Fatalf("sticky=%v: %d events, stored %d", sticky, len(got), len(want))
				}
				for i := range got {
					if !sameAction(got[i], want[i]) {
						t.Fatalf("sticky=%v: event %d is %+v, stored %+v", sticky, i+1, got[i], want[i])
					}
				}
			}
		})
	}
}
