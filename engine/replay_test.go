package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duroworker/duroworker/internal/replay"
)

func echoActivities() map[string]ActivityFunc {
	return map[string]ActivityFunc{
		"Echo":  func(_ *ActivityContext, in string) (string, error) { return in, nil },
		"Upper": func(_ *ActivityContext, in string) (string, error) { return strings.ToUpper(in), nil },
		"Fail":  func(_ *ActivityContext, in string) (string, error) { return "", errors.New("boom: " + in) },
	}
}

func TestReplayScenarios(t *testing.T) {
	type scenario struct {
		name       string
		orch       OrchestrationFunc
		input      string
		setup      func(*sim)
		wantStatus replay.ExecutionStatus
		wantOutput string
		wantErr    string // substring of the failure's display message
		wantKinds  []string
	}
	scenarios := []scenario{
		{
			name: "hello world",
			orch: func(ctx *OrchestrationContext, in string) (string, error) {
				return ctx.ScheduleActivity("Upper", "hello "+in).Get()
			},
			input:      "world",
			wantStatus: replay.StatusCompleted,
			wantOutput: "HELLO WORLD",
			wantKinds:  []string{"OrchestrationStarted:O", "ActivityScheduled:Upper", "ActivityCompleted", "OrchestrationCompleted"},
		},
		{
			name: "sequential chain",
			orch: func(ctx *OrchestrationContext, in string) (string, error) {
				v := in
				for i := 0; i < 5; i++ {
					out, err := ctx.ScheduleActivity("Echo", v+".").Get()
					if err != nil {
						return "", err
					}
					v = out
				}
				return v, nil
			},
			input:      "x",
			wantStatus: replay.StatusCompleted,
			wantOutput: "x.....",
		},
		{
			name: "fan-out fan-in with join",
			orch: func(ctx *OrchestrationContext, in string) (string, error) {
				var fs []*Future[string]
				var aw []Awaitable
				for i := 0; i < 10; i++ {
					f := ctx.ScheduleActivity("Echo", fmt.Sprint(i))
					fs = append(fs, f)
					aw = append(aw, f)
				}
				ctx.Join(aw...)
				var sb strings.Builder
				for _, f := range fs {
					v, err := f.Get()
					if err != nil {
						return "", err
					}
					sb.WriteString(v)
				}
				return sb.String(), nil
			},
			wantStatus: replay.StatusCompleted,
			wantOutput: "0123456789",
		},
		{
			name: "select: activity beats timer",
			orch: func(ctx *OrchestrationContext, in string) (string, error) {
				act := ctx.ScheduleActivity("Echo", "fast")
				timer := ctx.ScheduleTimer(time.Hour)
				if ctx.Select(act, timer) == 0 {
					return act.Get()
				}
				return "timeout", nil
			},
			wantStatus: replay.StatusCompleted,
			wantOutput: "fast",
		},
		{
			name: "select: timer beats external event",
			orch: func(ctx *OrchestrationContext, in string) (string, error) {
				approval := ctx.WaitForEvent("approve")
				timer := ctx.ScheduleTimer(time.Minute)
				if ctx.Select(approval, timer) == 0 {
					return approval.Get()
				}
				return "timed out", nil
			},
			setup:      func(s *sim) { s.raiseAt(2*time.Minute, "approve", "yes") },
			wantStatus: replay.StatusCompleted,
			wantOutput: "timed out",
		},
		{
			name: "select: external event beats timer",
			orch: func(ctx *OrchestrationContext, in string) (string, error) {
				approval := ctx.WaitForEvent("approve")
				timer := ctx.ScheduleTimer(time.Minute)
				if ctx.Select(approval, timer) == 0 {
					return approval.Get()
				}
				return "timed out", nil
			},
			setup:      func(s *sim) { s.raiseAt(30*time.Second, "approve", "yes") },
			wantStatus: replay.StatusCompleted,
			wantOutput: "yes",
		},
		{
			name: "event raised before its subscription is not delivered",
			orch: func(ctx *OrchestrationContext, in string) (string, error) {
				if _, err := ctx.ScheduleTimer(time.Minute).Get(); err != nil {
					return "", err
				}
				return ctx.WaitForEvent("go").Get()
			},
			setup: func(s *sim) {
				s.raiseAt(10*time.Second, "go", "early")
				s.raiseAt(5*time.Minute, "go", "late")
			},
			wantStatus: replay.StatusCompleted,
			wantOutput: "late",
			wantKinds: []string{"OrchestrationStarted:O", "TimerCreated", "ExternalEvent:go", "TimerFired",
				"ExternalSubscribed:go", "ExternalEvent:go", "OrchestrationCompleted"},
		},
		{
			name: "activity error is returned to the orchestration",
			orch: func(ctx *OrchestrationContext, in string) (string, error) {
				_, err := ctx.ScheduleActivity("Fail", "x").Get()
				var d *ErrorDetails
				if !errors.As(err, &d) || d.Category != CategoryApplication {
					return "", fmt.Errorf("unexpected error %T %v", err, err)
				}
				return "caught " + err.Error(), nil
			},
			wantStatus: replay.StatusCompleted,
			wantOutput: "caught boom: x",
		},
		{
			name: "orchestration error fails the execution",
			orch: func(ctx *OrchestrationContext, in string) (string, error) {
				if _, err := ctx.ScheduleActivity("Fail", "y").Get(); err != nil {
					return "", fmt.Errorf("step 1: %w", err)
				}
				return "", nil
			},
			wantStatus: replay.StatusFailed,
			wantErr:    "boom: y",
		},
		{
			name: "panic fails the execution",
			orch: func(ctx *OrchestrationContext, in string) (string, error) {
				if _, err := ctx.ScheduleActivity("Echo", "a").Get(); err != nil {
					return "", err
				}
				panic("kaboom")
			},
			wantStatus: replay.StatusFailed,
			wantErr:    "orchestration panicked: kaboom",
		},
		{
			name: "deterministic now and guid",
			orch: func(ctx *OrchestrationContext, in string) (string, error) {
				t1, g1 := ctx.Now(), ctx.NewGUID()
				if _, err := ctx.ScheduleTimer(time.Hour).Get(); err != nil {
					return "", err
				}
				t2, g2 := ctx.Now(), ctx.NewGUID()
				if g1 == g2 || !t2.After(t1.Add(59*time.Minute)) {
					return "", fmt.Errorf("bad now/guid: %v %v %s %s", t1, t2, g1, g2)
				}
				return t1.UTC().Format(time.RFC3339) + " " + g1 + " " + g2, nil
			},
			wantStatus: replay.StatusCompleted,
		},
		{
			name: "retry policy retries then succeeds",
			orch: func(ctx *OrchestrationContext, in string) (string, error) {
				return ctx.ScheduleActivity("Flaky", "z", WithRetry(NewRetryPolicy(5).WithBackoff(FixedBackoff(time.Second)))).Get()
			},
			wantStatus: replay.StatusCompleted,
			wantOutput: "ok after 3",
			wantKinds: []string{"OrchestrationStarted:O",
				"ActivityScheduled:Flaky", "ActivityFailed", "TimerCreated", "TimerFired",
				"ActivityScheduled:Flaky", "ActivityFailed", "TimerCreated", "TimerFired",
				"ActivityScheduled:Flaky", "ActivityCompleted", "OrchestrationCompleted"},
		},
		{
			name: "retry policy timeout is not retried",
			orch: func(ctx *OrchestrationContext, in string) (string, error) {
				return ctx.ScheduleActivity("Never", "z", WithRetry(NewRetryPolicy(3)), WithTimeout(30*time.Second)).Get()
			},
			wantStatus: replay.StatusFailed,
			wantErr:    "timeout: activity Never timed out after 30s",
		},
		{
			name: "typed activity with malformed result",
			orch: func(ctx *OrchestrationContext, in string) (string, error) {
				_, err := ScheduleActivityTyped[int](ctx, "Echo", "not a number").Get()
				if err == nil {
					return "", errors.New("expected a decode error")
				}
				return "decode error: " + err.Error(), nil
			},
			wantStatus: replay.StatusCompleted,
		},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			orchs := NewOrchestrationRegistry().Register("O", sc.orch).MustBuild()
			acts := echoActivities()
			attempts := 0
			acts["Flaky"] = func(_ *ActivityContext, in string) (string, error) {
				attempts++
				if attempts%3 != 0 {
					return "", errors.New("transient")
				}
				return fmt.Sprintf("ok after %d", 3), nil
			}
			acts["Never"] = nil // scheduled but never completes: the sim has no such work runner
			s := bothWays(t, orchs, withoutNil(acts), sc.setup, "O", sc.input)
			if s.status != sc.wantStatus {
				t.Fatalf("status = %s, want %s (failure: %v)", s.status, sc.wantStatus, s.failure)
			}
			if sc.wantOutput != "" && s.output != sc.wantOutput {
				t.Fatalf("output = %q, want %q", s.output, sc.wantOutput)
			}
			if sc.wantErr != "" && (s.failure == nil || !strings.Contains(s.failure.Error(), sc.wantErr)) {
				t.Fatalf("failure = %v, want it to contain %q", s.failure, sc.wantErr)
			}
			if sc.wantKinds != nil && fmt.Sprint(s.kinds()) != fmt.Sprint(sc.wantKinds) {
				t.Fatalf("history kinds:\n got %v\nwant %v", s.kinds(), sc.wantKinds)
			}
		})
	}
}

// withoutNil drops nil entries; activities missing from the map never
// complete in the sim (their work item is discarded).
func withoutNil(m map[string]ActivityFunc) map[string]ActivityFunc {
	out := map[string]ActivityFunc{}
	for k, v := range m {
		if v != nil {
			out[k] = v
		} else {
			out[k] = func(ctx *ActivityContext, in string) (string, error) { return "", errNeverCompletes }
		}
	}
	return out
}

var errNeverCompletes = errors.New("never completes")

func TestContinueAsNewUpgradesOnlyAtExecutionBoundary(t *testing.T) {
	// Version 1.0.0 is running; 1.0.1 and 1.0.2 are registered. The first
	// execution (started when only 1.0.0 existed, simulated by an explicit
	// version) keeps 1.0.0; continue-as-new resolves Latest = 1.0.2.
	mk := func(tag string) OrchestrationFunc {
		return func(ctx *OrchestrationContext, in string) (string, error) {
			if _, err := ctx.ScheduleTimer(time.Minute).Get(); err != nil {
				return "", err
			}
			if in == "stop" {
				return tag, nil
			}
			return ctx.ContinueAsNew("stop")
		}
	}
	orchs := NewOrchestrationRegistry().
		Register("Monitor", mk("v1.0.0")).
		RegisterVersioned("Monitor", "1.0.1", mk("v1.0.1")).
		RegisterVersioned("Monitor", "1.0.2", mk("v1.0.2")).
		MustBuild()
	for _, sticky := range []bool{true, false} {
		s := newSim(t, orchs, nil, sticky)
		s.run("Monitor", "1.0.0", "go")
		if s.status != replay.StatusCompleted || s.output != "v1.0.2" {
			t.Fatalf("sticky=%v: status %s output %q", sticky, s.status, s.output)
		}
		if fmt.Sprint(s.versions) != "[1.0.0 1.0.2]" {
			t.Fatalf("sticky=%v: versions per execution = %v", sticky, s.versions)
		}
	}
}

func TestContinueAsNewVersionedPinsExplicitly(t *testing.T) {
	orch := func(ctx *OrchestrationContext, in string) (string, error) {
		if in == "again" {
			return ctx.Version(), nil
		}
		return ctx.ContinueAsNewVersioned("1.0.0", "again")
	}
	orchs := NewOrchestrationRegistry().Register("P", orch).RegisterVersioned("P", "2.0.0", orch).MustBuild()
	s := newSim(t, orchs, nil, true)
	s.run("P", "", "first")
	if s.output != "1.0.0" || fmt.Sprint(s.versions) != "[2.0.0 1.0.0]" {
		t.Fatalf("output %q versions %v", s.output, s.versions)
	}
}

func TestNondeterminismNamesExpectedAndActual(t *testing.T) {
	v1 := func(ctx *OrchestrationContext, in string) (string, error) {
		return ctx.ScheduleActivity("Echo", "a").Get()
	}
	changed := map[string]OrchestrationFunc{
		"different activity": func(ctx *OrchestrationContext, in string) (string, error) {
			return ctx.ScheduleActivity("Upper", "a").Get()
		},
		"timer instead of activity": func(ctx *OrchestrationContext, in string) (string, error) {
			_, err := ctx.ScheduleTimer(time.Second).Get()
			return "", err
		},
		"returns without scheduling": func(ctx *OrchestrationContext, in string) (string, error) {
			return "early", nil
		},
	}
	for name, v2 := range changed {
		t.Run(name, func(t *testing.T) {
			// Turn 1 with v1 records ActivityScheduled(Echo, a).
			x1, _ := replay.NewExecutor(bind(v1), replay.ExecutionInfo{InstanceID: "i", ExecutionID: 1, Name: "O", Version: "1.0.0"}, nil, replay.ExecutorOptions{})
			res, err := x1.Turn(time.UnixMilli(1000), []replay.Message{{Kind: replay.MessageStart, Name: "O", Input: "in"}})
			if err != nil || res.Status != replay.StatusRunning {
				t.Fatalf("turn 1: %v %v", err, res)
			}
			x1.Close()
			// Turn 2 replays with changed code.
			x2, _ := replay.NewExecutor(bind(v2), replay.ExecutionInfo{InstanceID: "i", ExecutionID: 1, Name: "O", Version: "1.0.0"}, res.NewEvents, replay.ExecutorOptions{})
			defer x2.Close()
			res2, err := x2.Turn(time.UnixMilli(2000), []replay.Message{{Kind: replay.MessageActivityCompleted, Execution: 1, EventID: 2, Result: "a"}})
			if err != nil {
				t.Fatal(err)
			}
			if res2.Status != replay.StatusFailed || !IsNondeterminism(res2.Failure) {
				t.Fatalf("want nondeterminism failure, got %s %v", res2.Status, res2.Failure)
			}
			msg := res2.Failure.Error()
			if !strings.HasPrefix(msg, "nondeterministic: ") {
				t.Fatalf("display string %q", msg)
			}
			if name != "returns without scheduling" && !(strings.Contains(msg, `"Echo"`) || strings.Contains(msg, "ActivityScheduled")) {
				t.Fatalf("message %q does not name the recorded action", msg)
			}
			last := res2.NewEvents[len(res2.NewEvents)-1]
			if last.Kind != replay.EventOrchestrationFailed || last.ID != 3 {
				t.Fatalf("last event %+v", last)
			}
		})
	}
}

func TestCompletionsForOtherExecutionsAndDuplicatesAreDropped(t *testing.T) {
	orch := func(ctx *OrchestrationContext, in string) (string, error) {
		a := ctx.ScheduleActivity("Echo", "1")
		b := ctx.ScheduleActivity("Echo", "2")
		ctx.Join(a, b)
		x, _ := a.Get()
		y, _ := b.Get()
		return x + y, nil
	}
	x, _ := replay.NewExecutor(bind(orch), replay.ExecutionInfo{InstanceID: "i", ExecutionID: 2, Name: "O", Version: "1.0.0"}, nil, replay.ExecutorOptions{})
	defer x.Close()
	if _, err := x.Turn(time.UnixMilli(1), []replay.Message{{Kind: replay.MessageContinueAsNew, Execution: 2, Name: "O"}}); err != nil {
		t.Fatal(err)
	}
	res, err := x.Turn(time.UnixMilli(2), []replay.Message{
		{Kind: replay.MessageActivityCompleted, Execution: 1, EventID: 2, Result: "stale"},
		{Kind: replay.MessageActivityCompleted, Execution: 2, EventID: 2, Result: "A"},
		{Kind: replay.MessageActivityCompleted, Execution: 2, EventID: 2, Result: "dup"},
		{Kind: replay.MessageActivityCompleted, Execution: 2, EventID: 3, Result: "B"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != replay.StatusCompleted || res.Output != "AB" {
		t.Fatalf("status %s output %q failure %v", res.Status, res.Output, res.Failure)
	}
	if len(res.Dropped) != 2 {
		t.Fatalf("dropped = %v, want the stale and the duplicate completion", res.Dropped)
	}
}

func TestPoisonedActivityFailsOrchestrationEvenIfCaught(t *testing.T) {
	orch := func(ctx *OrchestrationContext, in string) (string, error) {
		if _, err := ctx.ScheduleActivity("Echo", "x").Get(); err != nil {
			return "swallowed", nil
		}
		return "ok", nil
	}
	x, _ := replay.NewExecutor(bind(orch), replay.ExecutionInfo{InstanceID: "i", ExecutionID: 1, Name: "O", Version: "1.0.0"}, nil, replay.ExecutorOptions{})
	defer x.Close()
	if _, err := x.Turn(time.UnixMilli(1), []replay.Message{{Kind: replay.MessageStart, Name: "O"}}); err != nil {
		t.Fatal(err)
	}
	poison := &replay.Failure{Category: CategoryPoison, Kind: KindPoisonActivity, Attempts: 11, MaxAttempts: 10, Instance: "i", Activity: "Echo", ActivityID: 2}
	res, err := x.Turn(time.UnixMilli(2), []replay.Message{{Kind: replay.MessageActivityFailed, Execution: 1, EventID: 2, Error: poison}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != replay.StatusFailed || !IsPoison(res.Failure) {
		t.Fatalf("status %s failure %v", res.Status, res.Failure)
	}
	if got := res.Failure.Error(); got != "poison: activity Echo#2 of orchestration i exceeded 11 attempts (max 10)" {
		t.Fatalf("display %q", got)
	}
}

// countingHandler counts log records by message.
type countingHandler struct {
	mu     sync.Mutex
	counts map[string]int
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.counts[r.Message]++
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

func TestTracesAreReplayGuarded(t *testing.T) {
	orch := func(ctx *OrchestrationContext, in string) (string, error) {
		ctx.TraceInfo("[v1.0.0] starting")
		for i := 0; i < 3; i++ {
			if _, err := ctx.ScheduleActivity("Echo", fmt.Sprint(i)).Get(); err != nil {
				return "", err
			}
			ctx.TraceInfo(fmt.Sprintf("step %d done", i))
		}
		return "done", nil
	}
	// Replay from history on every turn: each trace must still be logged once.
	h := &countingHandler{counts: map[string]int{}}
	logger := slog.New(h)
	var history []replay.Event
	msgs := []replay.Message{{Kind: replay.MessageStart, Name: "O"}}
	for turn := 0; turn < 10; turn++ {
		x, _ := replay.NewExecutor(bind(orch), replay.ExecutionInfo{InstanceID: "i", ExecutionID: 1, Name: "O", Version: "1.0.0"}, history, replay.ExecutorOptions{Logger: logger})
		res, err := x.Turn(time.UnixMilli(int64(turn+1)), msgs)
		x.Close()
		if err != nil {
			t.Fatal(err)
		}
		history = append(history, res.NewEvents...)
		if res.Status != replay.StatusRunning {
			break
		}
		msgs = nil
		for _, a := range res.Activities {
			msgs = append(msgs, a.Completion(a.Input, nil))
		}
	}
	for _, msg := range []string{"[v1.0.0] starting", "step 0 done", "step 1 done", "step 2 done"} {
		if h.counts[msg] != 1 {
			t.Errorf("%q logged %d times, want 1 (counts %v)", msg, h.counts[msg], h.counts)
		}
	}
}

func TestContextUsedFromAnotherGoroutineFailsTheExecution(t *testing.T) {
	var leaked *OrchestrationContext
	orch := func(ctx *OrchestrationContext, in string) (string, error) {
		leaked = ctx
		return ctx.ScheduleActivity("Echo", "x").Get()
	}
	x, _ := replay.NewExecutor(bind(orch), replay.ExecutionInfo{InstanceID: "i", ExecutionID: 1, Name: "O", Version: "1.0.0"}, nil, replay.ExecutorOptions{})
	defer x.Close()
	if _, err := x.Turn(time.UnixMilli(1), []replay.Message{{Kind: replay.MessageStart, Name: "O"}}); err != nil {
		t.Fatal(err)
	}
	// The orchestration is parked; another goroutine uses its context.
	done := make(chan struct{})
	go func() {
		defer close(done)
		leaked.ScheduleActivity("Echo", "from a goroutine")
		t.Error("the foreign call returned; it must stop its goroutine")
	}()
	<-done
	res, err := x.Turn(time.UnixMilli(2), []replay.Message{{Kind: replay.MessageActivityCompleted, Execution: 1, EventID: 2, Result: "x"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != replay.StatusFailed || !strings.Contains(res.Failure.Error(), "outside the orchestration's goroutine") {
		t.Fatalf("status %s failure %v", res.Status, res.Failure)
	}
}

func TestStepTimeoutAbandonsBlockingCode(t *testing.T) {
	release := make(chan struct{})
	orch := func(ctx *OrchestrationContext, in string) (string, error) {
		<-release // blocks outside the context
		return "late", nil
	}
	x, _ := replay.NewExecutor(bind(orch), replay.ExecutionInfo{InstanceID: "i", ExecutionID: 1, Name: "O", Version: "1.0.0"}, nil, replay.ExecutorOptions{StepTimeout: 20 * time.Millisecond})
	_, err := x.Turn(time.UnixMilli(1), []replay.Message{{Kind: replay.MessageStart, Name: "O"}})
	if !errors.Is(err, replay.ErrStepTimeout) {
		t.Fatalf("err = %v, want replay.ErrStepTimeout", err)
	}
	x.Close()
	close(release) // the goroutine finishes and exits without touching the executor
}

func TestTypedOrchestrationRejectsMalformedInput(t *testing.T) {
	type Order struct {
		ID    int `json:"id"`
		Items int `json:"items"`
	}
	b := NewOrchestrationRegistry()
	RegisterTyped(b, "Typed", func(ctx *OrchestrationContext, o Order) (Order, error) {
		o.Items *= 2
		return o, nil
	})
	orchs := b.MustBuild()
	s := newSim(t, orchs, nil, true)
	s.run("Typed", "", `{"id":7,"items":3}`)
	if s.status != replay.StatusCompleted || s.output != `{"id":7,"items":6}` {
		t.Fatalf("status %s output %q", s.status, s.output)
	}
	s = newSim(t, orchs, nil, true)
	s.run("Typed", "", `{"id":"seven"`)
	if s.status != replay.StatusFailed || s.failure.Category != CategoryApplication || !strings.Contains(s.failure.Error(), "invalid input") {
		t.Fatalf("status %s failure %v", s.status, s.failure)
	}
}
