package engine

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/duroworker/duroworker/internal/replay"
)

// driver runs turns of one execution, either on one live executor (sticky)
// or on a fresh executor replaying the stored history every turn.
type driver struct {
	t      *testing.T
	fn     OrchestrationFunc
	info   replay.ExecutionInfo
	sticky bool
	kv     map[string]replay.KVEntry
	hist   []replay.Event
	x      *replay.Executor
	now    int64
}

func newDriver(t *testing.T, fn OrchestrationFunc, sticky bool) *driver {
	return &driver{t: t, fn: fn, sticky: sticky, info: replay.ExecutionInfo{InstanceID: "p", ExecutionID: 1, Name: "O", Version: "1.0.0"}}
}

func (d *driver) turn(msgs ...replay.Message) *replay.TurnResult {
	d.t.Helper()
	d.now += 1000
	if d.x == nil || !d.sticky {
		if d.x != nil {
			d.x.Close()
		}
		x, err := replay.NewExecutor(bind(d.fn), d.info, d.hist, replay.ExecutorOptions{KV: d.kv})
		if err != nil {
			d.t.Fatal(err)
		}
		d.x = x
	}
	res, err := d.x.Turn(time.UnixMilli(d.now), msgs)
	if err != nil {
		d.t.Fatal(err)
	}
	d.hist = append(d.hist, res.NewEvents...)
	return res
}

func (d *driver) close() {
	if d.x != nil {
		d.x.Close()
	}
}

func bothModes(t *testing.T, f func(t *testing.T, sticky bool)) {
	for _, sticky := range []bool{true, false} {
		t.Run(fmt.Sprintf("sticky=%v", sticky), func(t *testing.T) { f(t, sticky) })
	}
}

func start(input string) replay.Message {
	return replay.Message{Kind: replay.MessageStart, Name: "O", Input: input}
}

func TestSubOrchestrationRoundTrip(t *testing.T) {
	bothModes(t, func(t *testing.T, sticky bool) {
		d := newDriver(t, func(ctx *OrchestrationContext, in string) (string, error) {
			a := ctx.ScheduleSubOrchestration("Child", "auto")
			b := ctx.ScheduleSubOrchestration("Child", "named", WithInstanceID("explicit-id"))
			ctx.Join(a, b)
			x, errA := a.Get()
			_, errB := b.Get()
			return fmt.Sprintf("%s|%v", x, errB != nil && errA == nil), nil
		}, sticky)
		d.info.ExecutionID = 3
		defer d.close()
		res := d.turn(replay.Message{Kind: replay.MessageContinueAsNew, Name: "O"})
		if len(res.Children) != 2 {
			t.Fatalf("children %+v", res.Children)
		}
		auto, named := res.Children[0], res.Children[1]
		if auto.InstanceID != "p::sub::3.2" || !auto.Parent || auto.Start.ParentExecution != 3 || auto.Start.ParentEventID != 2 {
			t.Fatalf("auto child %+v", auto)
		}
		if named.InstanceID != "explicit-id" || named.Collision == nil || named.Collision.EventID != 3 {
			t.Fatalf("named child %+v", named)
		}
		res = d.turn(replay.Message{Kind: replay.MessageSubOrchestrationCompleted, Execution: 3, EventID: 2, Result: "child says hi"}, *named.Collision)
		if res.Status != replay.StatusCompleted || res.Output != "child says hi|true" {
			t.Fatalf("%s %q %v", res.Status, res.Output, res.Failure)
		}
	})
}

func TestChildSystemFailureFailsParent(t *testing.T) {
	d := newDriver(t, func(ctx *OrchestrationContext, in string) (string, error) {
		if _, err := ctx.ScheduleSubOrchestration("Child", "").Get(); err != nil {
			return "caught", nil
		}
		return "ok", nil
	}, true)
	defer d.close()
	d.turn(start(""))
	poison := &replay.Failure{Category: CategoryPoison, Kind: KindPoisonOrchestration, Instance: "p::sub::1.2", Attempts: 11, MaxAttempts: 10}
	res := d.turn(replay.Message{Kind: replay.MessageSubOrchestrationFailed, Execution: 1, EventID: 2, Error: poison})
	if res.Status != replay.StatusFailed || !IsPoison(res.Failure) {
		t.Fatalf("%s %v", res.Status, res.Failure)
	}
}

func TestChildNotifiesParentAndKeepsLinkAcrossContinueAsNew(t *testing.T) {
	d := newDriver(t, func(ctx *OrchestrationContext, in string) (string, error) {
		if in == "first" {
			return ctx.ContinueAsNew("second")
		}
		return "done " + in, nil
	}, true)
	defer d.close()
	res := d.turn(replay.Message{Kind: replay.MessageStart, Name: "O", Input: "first", ParentInstance: "parent", ParentExecution: 4, ParentEventID: 7})
	if res.Status != replay.StatusContinuedAsNew || res.Next.ParentInstance != "parent" || res.Next.ParentExecution != 4 || res.Next.ParentEventID != 7 {
		t.Fatalf("next %+v", res.Next)
	}
	if len(res.Outbox) != 0 {
		t.Fatalf("continue-as-new must not notify the parent: %+v", res.Outbox)
	}
	d2 := newDriver(t, d.fn, true)
	d2.info.ExecutionID = 2
	defer d2.close()
	res = d2.turn(*res.Next)
	if len(res.Outbox) != 1 || res.Outbox[0].InstanceID != "parent" {
		t.Fatalf("outbox %+v", res.Outbox)
	}
	m := res.Outbox[0].Message
	if m.Kind != replay.MessageSubOrchestrationCompleted || m.Execution != 4 || m.EventID != 7 || m.Result != "done second" {
		t.Fatalf("notification %+v", m)
	}
}

func TestDetachedOrchestrationHasNoParent(t *testing.T) {
	d := newDriver(t, func(ctx *OrchestrationContext, in string) (string, error) {
		named, _ := ctx.ScheduleSubOrchestration("Other", "x", Detached(), WithInstanceID("fire-and-forget")).Get()
		generated, _ := ctx.ScheduleSubOrchestration("Other", "y", Detached()).Get()
		_, err := ctx.ScheduleSubOrchestration("Other", "z", Detached(), WithInstanceID("bad\nid")).Get()
		return named + "," + generated + "," + fmt.Sprint(err != nil), nil
	}, true)
	defer d.close()
	res := d.turn(start(""))
	if len(res.Children) != 2 {
		t.Fatalf("children %+v", res.Children)
	}
	for _, c := range res.Children {
		if c.Parent || c.Collision != nil || c.Start.ParentInstance != "" {
			t.Fatalf("detached child has a parent link: %+v", c)
		}
	}
	if res.Status != replay.StatusCompleted || res.Output != "fire-and-forget,p::detached::1.3,true" {
		t.Fatalf("status %s output %q", res.Status, res.Output)
	}
	if res.Children[1].InstanceID != "p::detached::1.3" {
		t.Fatalf("generated id %q", res.Children[1].InstanceID)
	}
}

func TestEventQueueIsFIFOAndCarriesForward(t *testing.T) {
	bothModes(t, func(t *testing.T, sticky bool) {
		d := newDriver(t, func(ctx *OrchestrationContext, in string) (string, error) {
			a, _ := ctx.DequeueEvent("cfg").Get()
			b, _ := ctx.DequeueEvent("cfg").Get()
			if _, err := ctx.ScheduleTimer(time.Minute).Get(); err != nil {
				return "", err
			}
			return ctx.ContinueAsNew(a + b)
		}, sticky)
		defer d.close()
		q := func(v string) replay.Message {
			return replay.Message{Kind: replay.MessageQueueEvent, Name: "cfg", Result: v}
		}
		d.turn(start(""), q("1"))
		res := d.turn(q("2"), q("3"), q("4"))
		if res.Status != replay.StatusRunning || len(res.Timers) != 1 {
			t.Fatalf("%s timers %d", res.Status, len(res.Timers))
		}
		res = d.turn(res.Timers[0].Message, q("5"))
		if res.Status != replay.StatusContinuedAsNew || res.Output != "12" {
			t.Fatalf("%s %q", res.Status, res.Output)
		}
		if res.Consumed != 1 {
			t.Fatalf("consumed %d messages; the one after the continue-as-new must stay for the next execution", res.Consumed)
		}
		var carried []string
		for _, it := range res.Next.CarryForward {
			carried = append(carried, it.Data)
		}
		if strings.Join(carried, ",") != "3,4" {
			t.Fatalf("carried %v", carried)
		}
		// The next execution dequeues the carried messages first, then the
		// ones left in the inbox.
		d2 := newDriver(t, func(ctx *OrchestrationContext, in string) (string, error) {
			var got []string
			for i := 0; i < 4; i++ {
				v, _ := ctx.DequeueEvent("cfg").Get()
				got = append(got, v)
			}
			return in + ":" + strings.Join(got, ""), nil
		}, sticky)
		d2.info.ExecutionID = 2
		defer d2.close()
		res = d2.turn(*res.Next, q("5"), q("6"))
		if res.Output != "12:3456" {
			t.Fatalf("next execution output %q", res.Output)
		}
	})
}

func TestCancelEndsExecutionAndTakesBackOpenWork(t *testing.T) {
	bothModes(t, func(t *testing.T, sticky bool) {
		d := newDriver(t, func(ctx *OrchestrationContext, in string) (string, error) {
			act := ctx.ScheduleActivity("Slow", "")
			child := ctx.ScheduleSubOrchestration("Child", "")
			ctx.Join(act, child)
			return "unreachable", nil
		}, sticky)
		defer d.close()
		d.turn(replay.Message{Kind: replay.MessageStart, Name: "O", ParentInstance: "gp", ParentExecution: 1, ParentEventID: 9})
		res := d.turn(replay.Message{Kind: replay.MessageCancel, Reason: "operator said so"}, replay.Message{Kind: replay.MessageCancel, Reason: "again"})
		if res.Status != replay.StatusFailed || res.Failure.Kind != KindCancelled || res.Failure.Error() != "cancelled: operator said so" {
			t.Fatalf("%s %v", res.Status, res.Failure)
		}
		if len(res.CancelActivities) != 1 || res.CancelActivities[0].EventID != 2 {
			t.Fatalf("cancel activities %+v", res.CancelActivities)
		}
		var childCancel, parentNote bool
		for _, o := range res.Outbox {
			if o.InstanceID == "p::sub::1.3" && o.Message.Kind == replay.MessageCancel && strings.Contains(o.Message.Reason, "operator said so") {
				childCancel = true
			}
			if o.InstanceID == "gp" && o.Message.Kind == replay.MessageSubOrchestrationFailed && o.Message.Error.Kind == KindCancelled {
				parentNote = true
			}
		}
		if !childCancel || !parentNote {
			t.Fatalf("outbox %+v", res.Outbox)
		}
		kinds := ""
		for _, e := range res.NewEvents {
			kinds += string(e.Kind) + " "
		}
		if kinds != "OrchestrationCancelRequested ActivityCancelRequested SubOrchestrationCancelRequested OrchestrationFailed " {
			t.Fatalf("events: %s", kinds)
		}
	})
}

func TestSelectCancelsLosersAndReplayEnforcesIt(t *testing.T) {
	racer := func(ctx *OrchestrationContext, in string) (string, error) {
		act := ctx.ScheduleActivity("Slow", "")
		wait := ctx.WaitForEvent("approve")
		timer := ctx.ScheduleTimer(time.Minute)
		switch ctx.Select(act, wait, timer) {
		case 0:
			return "activity", nil
		case 1:
			return "approved", nil
		}
		// The loser wait no longer consumes arrivals: a new wait gets the next one.
		v, _ := ctx.WaitForEvent("approve").Get()
		return "timeout then " + v, nil
	}
	bothModes(t, func(t *testing.T, sticky bool) {
		d := newDriver(t, racer, sticky)
		defer d.close()
		res := d.turn(start(""))
		timer := res.Timers[0].Message
		res = d.turn(timer)
		if len(res.CancelActivities) != 1 || res.CancelActivities[0].EventID != 2 {
			t.Fatalf("loser activity not cancelled: %+v", res.CancelActivities)
		}
		// A late completion of the cancelled activity is dropped.
		res = d.turn(replay.Message{Kind: replay.MessageActivityCompleted, Execution: 1, EventID: 2, Result: "late"}, replay.Message{Kind: replay.MessageExternalEvent, Name: "approve", Result: "yes"})
		if res.Status != replay.StatusCompleted || res.Output != "timeout then yes" {
			t.Fatalf("%s %q %v", res.Status, res.Output, res.Failure)
		}
	})

	// Replaying the recorded history with code that no longer cancels (it
	// waits on the activity instead) is nondeterministic.
	d := newDriver(t, racer, true)
	defer d.close()
	res := d.turn(start(""))
	d.turn(res.Timers[0].Message)
	changed := func(ctx *OrchestrationContext, in string) (string, error) {
		act := ctx.ScheduleActivity("Slow", "")
		ctx.WaitForEvent("approve")
		timer := ctx.ScheduleTimer(time.Minute)
		ctx.Join(timer)
		return act.Get()
	}
	x, _ := replay.NewExecutor(bind(changed), d.info, d.hist, replay.ExecutorOptions{})
	defer x.Close()
	res, err := x.Turn(time.UnixMilli(99_000), []replay.Message{{Kind: replay.MessageExternalEvent, Name: "approve", Result: "yes"}})
	if err != nil {
		t.Fatal(err)
	}
	if !IsNondeterminism(res.Failure) || !strings.Contains(res.Failure.Error(), "ActivityCancelRequested") {
		t.Fatalf("want nondeterminism naming the cancellation, got %v", res.Failure)
	}
}

func TestCustomStatusAndCarryOver(t *testing.T) {
	bothModes(t, func(t *testing.T, sticky bool) {
		d := newDriver(t, func(ctx *OrchestrationContext, in string) (string, error) {
			if s, ok := ctx.CustomStatus(); ok {
				return "inherited " + s, nil
			}
			if err := ctx.SetCustomStatus("step 1"); err != nil {
				return "", err
			}
			if err := ctx.SetCustomStatus(strings.Repeat("x", MaxCustomStatusBytes+1)); err == nil {
				return "", fmt.Errorf("oversized status accepted")
			}
			if _, err := ctx.ScheduleTimer(time.Second).Get(); err != nil {
				return "", err
			}
			ctx.ResetCustomStatus()
			_ = ctx.SetCustomStatus("step 2")
			return ctx.ContinueAsNew("")
		}, sticky)
		defer d.close()
		res := d.turn(start(""))
		if res.CustomStatus == nil || res.CustomStatus.Value != "step 1" {
			t.Fatalf("turn 1 status %+v", res.CustomStatus)
		}
		res = d.turn(res.Timers[0].Message)
		if res.CustomStatus == nil || res.CustomStatus.Value != "step 2" || res.Next.CustomStatus == nil || *res.Next.CustomStatus != "step 2" {
			t.Fatalf("turn 2 status %+v next %+v", res.CustomStatus, res.Next)
		}
		d2 := newDriver(t, d.fn, sticky)
		d2.info.ExecutionID = 2
		defer d2.close()
		if res = d2.turn(*res.Next); res.Output != "inherited step 2" {
			t.Fatalf("output %q", res.Output)
		}
	})
}

func TestKVReadsAreDeterministicAndLimited(t *testing.T) {
	bothModes(t, func(t *testing.T, sticky bool) {
		d := newDriver(t, func(ctx *OrchestrationContext, in string) (string, error) {
			n, _, _ := GetKVTyped[int](ctx, "counter")
			if err := SetKVTyped(ctx, "counter", n+1); err != nil {
				return "", err
			}
			if err := ctx.SetKV("", "x"); err == nil {
				return "", fmt.Errorf("empty key accepted")
			}
			if err := ctx.SetKV("big", strings.Repeat("x", MaxKVValueBytes+1)); err == nil {
				return "", fmt.Errorf("oversized value accepted")
			}
			if _, err := ctx.ScheduleTimer(time.Second).Get(); err != nil {
				return "", err
			}
			v, _ := ctx.GetKV("counter")
			ctx.ClearKV("old")
			pruned := ctx.PruneKV(ctx.Now().Add(-time.Hour))
			return fmt.Sprintf("%s keys=%v pruned=%d", v, ctx.KVKeys(), pruned), nil
		}, sticky)
		// Snapshot as of execution start: counter=41, old, and a stale key.
		d.now = int64(10 * time.Hour / time.Millisecond)
		d.kv = map[string]replay.KVEntry{
			"counter": {Value: "41", UpdatedAt: time.UnixMilli(d.now)},
			"old":     {Value: "x", UpdatedAt: time.UnixMilli(d.now)},
			"stale":   {Value: "x", UpdatedAt: time.UnixMilli(0)},
		}
		defer d.close()
		res := d.turn(start(""))
		if len(res.KV) != 1 || res.KV[0].Kind != replay.KVSet || res.KV[0].Value != "42" {
			t.Fatalf("turn 1 kv %+v", res.KV)
		}
		// Replays read the snapshot (41) plus their own write, never 42+1.
		res = d.turn(res.Timers[0].Message)
		if res.Output != "42 keys=[counter] pruned=1" {
			t.Fatalf("output %q", res.Output)
		}
		if len(res.KV) != 2 || res.KV[0].Kind != replay.KVClear || res.KV[0].Key != "old" || res.KV[1].Key != "stale" {
			t.Fatalf("turn 2 kv %+v", res.KV)
		}
	})
}

func TestKVKeyLimit(t *testing.T) {
	d := newDriver(t, func(ctx *OrchestrationContext, in string) (string, error) {
		for i := 0; i < MaxKVKeys; i++ {
			if err := ctx.SetKV(fmt.Sprint("k", i), "v"); err != nil {
				return "", err
			}
		}
		if err := ctx.SetKV("one-too-many", "v"); err == nil {
			return "", fmt.Errorf("key %d accepted", MaxKVKeys+1)
		}
		return "ok", ctx.SetKV("k0", "overwrite is fine")
	}, true)
	defer d.close()
	if res := d.turn(start("")); res.Output != "ok" {
		t.Fatalf("%s %q %v", res.Status, res.Output, res.Failure)
	}
}

func TestHistoryLimitFailsWithAHint(t *testing.T) {
	fn := func(ctx *OrchestrationContext, in string) (string, error) {
		for {
			if _, err := ctx.ScheduleTimer(time.Second).Get(); err != nil {
				return "", err
			}
		}
	}
	x, _ := replay.NewExecutor(bind(fn), replay.ExecutionInfo{InstanceID: "p", ExecutionID: 1, Name: "O", Version: "1.0.0"}, nil, replay.ExecutorOptions{MaxHistoryEvents: 10})
	defer x.Close()
	res, _ := x.Turn(time.UnixMilli(1), []replay.Message{start("")})
	for i := 0; res.Status == replay.StatusRunning && i < 20; i++ {
		res, _ = x.Turn(time.UnixMilli(int64(i+2)*1000), []replay.Message{res.Timers[0].Message})
	}
	if res.Status != replay.StatusFailed || !strings.Contains(res.Failure.Error(), "use ContinueAsNew") {
		t.Fatalf("%s %v", res.Status, res.Failure)
	}
}

func TestSelectLoserGetReturnsCancelled(t *testing.T) {
	d := newDriver(t, func(ctx *OrchestrationContext, in string) (string, error) {
		act := ctx.ScheduleActivity("Slow", "")
		timer := ctx.ScheduleTimer(time.Second)
		ctx.Select(act, timer)
		_, err := act.Get() // must not block
		ctx.Join(act)       // nor this
		var det *ErrorDetails
		if !errors.As(err, &det) || det.Kind != KindCancelled {
			return "", fmt.Errorf("loser Get: %v", err)
		}
		return "loser: " + err.Error(), nil
	}, true)
	defer d.close()
	res := d.turn(start(""))
	res = d.turn(res.Timers[0].Message)
	if res.Status != replay.StatusCompleted || res.Output != "loser: cancelled: select_loser" {
		t.Fatalf("%s %q %v", res.Status, res.Output, res.Failure)
	}
}

func TestInvalidNamesAndKeysAreRejectedInCode(t *testing.T) {
	d := newDriver(t, func(ctx *OrchestrationContext, in string) (string, error) {
		if _, err := ctx.ScheduleActivity("bad{name}", "").Get(); err == nil {
			return "", fmt.Errorf("activity name with braces accepted")
		}
		if _, err := ctx.ScheduleSubOrchestration("bad\nname", "").Get(); err == nil {
			return "", fmt.Errorf("orchestration name with a newline accepted")
		}
		if err := ctx.SetKV("\x00all", "x"); err == nil {
			return "", fmt.Errorf("NUL-prefixed key accepted")
		}
		return ctx.ContinueAsNew(strings.Repeat("x", MaxPayloadBytes+1))
	}, true)
	defer d.close()
	res := d.turn(start(""))
	if res.Status != replay.StatusFailed || !strings.Contains(res.Failure.Error(), "continue-as-new input") {
		t.Fatalf("%s %v", res.Status, res.Failure)
	}
}
