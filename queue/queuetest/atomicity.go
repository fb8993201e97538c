package queuetest

import (
	"strings"
	"sync"

	"github.com/duroworker/duroworker/queue"
)

// fullAck is a turn of instance id (execution 1) that uses every part of an
// ack: history, head message, new bucket, name, version, pin, a work item
// with a reference, a timer, a message to "target", a child, a custom
// status and a key-value write.
func (e *env) fullAck(id, token string) queue.OrchestrationAck {
	e.t.Helper()
	return queue.OrchestrationAck{
		InstanceID: id, Token: token, ExecutionID: 1, Status: queue.StatusRunning,
		NewEvents: []string{"e1", "e2"}, HeadMessages: []string{"head"},
		Name: "orch2", Version: "2.0", EnginePin: "9.9.9", ReadyBucket: "x:moved",
		Activities:   []queue.WorkItem{{Bucket: "a:act", Body: "w1", ExecutionID: 1, EventID: 7}},
		Timers:       []queue.Timer{{DueAt: e.now(id).Add(e.hide()), Body: "tm"}},
		Outbox:       []queue.OutboundMessage{{InstanceID: "target", Body: "hello"}},
		Children:     []queue.ChildStart{{InstanceID: "child", Name: "sub", Version: "1", ParentInstanceID: id, Bucket: "o:sub", Message: "child-start"}},
		CustomStatus: &queue.CustomStatusUpdate{Value: "cs"},
		KV:           []queue.KVOp{{Op: queue.KVSet, Key: "k", Value: "v"}},
	}
}

// fullSetup starts "p" and "target" and returns p locked in a turn.
func (e *env) fullSetup() queue.OrchestrationItem {
	e.t.Helper()
	e.start("p", "o:p")
	e.create("target", "o:t", "start")
	return e.turn("p", "m1")
}

// checkFullAck checks every effect of fullAck("p", ...).
func (e *env) checkFullAck() {
	e.t.Helper()
	t := e.t
	wantEqual(t, "history", []string{"started", "e1", "e2"}, e.history("p", 1))
	r := e.instance("p")
	if r.Name != "orch2" || r.Version != "2.0" || r.EnginePin != "9.9.9" || r.ReadyBucket != "x:moved" ||
		r.Locked || r.Attempts != 0 || !r.CustomStatusSet || r.CustomStatus != "cs" || r.CustomStatusVersion != 1 {
		t.Fatalf("instance after ack = %+v", r)
	}
	if v, ok, err := e.s.KV(e.ctx, "p", "k"); err != nil || !ok || v != "v" {
		t.Fatalf("KV k = %q %v %v, want v", v, ok, err)
	}
	if e.timers() != 1 {
		t.Fatalf("timers = %d, want 1", e.timers())
	}
	if w := e.workOne("a:act"); w.Body != "w1" || w.InstanceID != "p" {
		t.Fatalf("work item = %+v", w)
	}
	c := e.instance("child")
	if c.ParentInstanceID != "p" || c.Status != queue.StatusPending || c.Name != "sub" || c.Version != "1" {
		t.Fatalf("child = %+v", c)
	}
	kids, err := e.s.Children(e.ctx, "p")
	e.must("Children", err)
	wantEqual(t, "children", []string{"child"}, kids)
	wantEqual(t, "target inbox", []string{"start", "hello"}, e.peekInbox("target"))
	pins, err := e.s.EnginePins(e.ctx)
	e.must("EnginePins", err)
	wantEqual(t, "pins", []string{"9.9.9"}, pins)
	it := e.fetchOne("x:moved")
	wantEqual(t, "head message readied the instance", []string{"head"}, it.Messages)
	e.fetchNone("o:p")
}

var atomicityCases = []testCase{
	{"stale_token_ack_writes_nothing", func(e *env) {
		it := e.fullSetup()
		before := e.snap("p", "target", "child")
		err := e.s.AckOrchestration(e.ctx, e.fullAck("p", it.Token+"x"))
		wantErr(e.t, "ack with a wrong token", err, queue.ErrLockLost)
		wantSame(e.t, "a refused ack", before, e.snap("p", "target", "child"))
		e.fetchNone("o:p", "x:moved") // still locked by the real holder
		e.ack(e.fullAck("p", it.Token))
		e.checkFullAck()
	}},
	{"too_large_ack_writes_nothing", func(e *env) {
		it := e.fullSetup()
		before := e.snap("p", "target", "child")
		n := queue.MaxAckEntries + 1
		strs := make([]string, n)
		for i := range strs {
			strs[i] = "x"
		}
		mutations := map[string]func(a *queue.OrchestrationAck){
			"NewEvents":    func(a *queue.OrchestrationAck) { a.NewEvents = strs },
			"HeadMessages": func(a *queue.OrchestrationAck) { a.HeadMessages = strs },
			"Activities": func(a *queue.OrchestrationAck) {
				a.Activities = make([]queue.WorkItem, n)
				for i := range a.Activities {
					a.Activities[i] = queue.WorkItem{Bucket: "a:act", Body: "x"}
				}
			},
			"Timers": func(a *queue.OrchestrationAck) { a.Timers = make([]queue.Timer, n) },
			"Outbox": func(a *queue.OrchestrationAck) {
				a.Outbox = make([]queue.OutboundMessage, n)
				for i := range a.Outbox {
					a.Outbox[i] = queue.OutboundMessage{InstanceID: "target", Body: "x"}
				}
			},
			"Children": func(a *queue.OrchestrationAck) {
				a.Children = make([]queue.ChildStart, n)
				for i := range a.Children {
					a.Children[i] = queue.ChildStart{InstanceID: "c", Name: "n", Bucket: "o:c", Message: "m"}
				}
			},
			"CancelActivities": func(a *queue.OrchestrationAck) {
				a.CancelActivities = make([]queue.ActivityRef, n)
				for i := range a.CancelActivities {
					a.CancelActivities[i] = queue.ActivityRef{ExecutionID: 1, EventID: int64(i)}
				}
			},
			"KV": func(a *queue.OrchestrationAck) {
				a.KV = make([]queue.KVOp, n)
				for i := range a.KV {
					a.KV[i] = queue.KVOp{Op: queue.KVSet, Key: "k", Value: "v"}
				}
			},
		}
		for list, mutate := range mutations {
			a := e.fullAck("p", it.Token)
			mutate(&a)
			err := e.s.AckOrchestration(e.ctx, a)
			wantErr(e.t, "ack with "+list+" too large", err, queue.ErrAckTooLarge)
			if !strings.Contains(err.Error(), list) {
				e.t.Errorf("error %q does not name the list %s", err, list)
			}
		}
		wantSame(e.t, "refused oversized acks", before, e.snap("p", "target", "child"))
		// Exactly MaxAckEntries is accepted.
		a := e.fullAck("p", it.Token)
		a.NewEvents = strs[:queue.MaxAckEntries]
		e.ack(a)
		if got := len(e.history("p", 1)); got != 1+queue.MaxAckEntries {
			e.t.Fatalf("history length = %d, want %d", got, 1+queue.MaxAckEntries)
		}
	}},
	{"invalid_ack_writes_nothing", func(e *env) {
		it := e.fullSetup()
		before := e.snap("p", "target", "child")
		bad := map[string]func(a *queue.OrchestrationAck){
			"no instance id":        func(a *queue.OrchestrationAck) { a.InstanceID = "" },
			"no token":              func(a *queue.OrchestrationAck) { a.Token = "" },
			"execution 0":           func(a *queue.OrchestrationAck) { a.ExecutionID = 0 },
			"empty status":          func(a *queue.OrchestrationAck) { a.Status = "" },
			"Pending status":        func(a *queue.OrchestrationAck) { a.Status = queue.StatusPending },
			"unknown status":        func(a *queue.OrchestrationAck) { a.Status = "Done" },
			"work without bucket":   func(a *queue.OrchestrationAck) { a.Activities[0].Bucket = "" },
			"outbox without target": func(a *queue.OrchestrationAck) { a.Outbox[0].InstanceID = "" },
			"child without id":      func(a *queue.OrchestrationAck) { a.Children[0].InstanceID = "" },
			"child without name":    func(a *queue.OrchestrationAck) { a.Children[0].Name = "" },
			"child without bucket":  func(a *queue.OrchestrationAck) { a.Children[0].Bucket = "" },
			"child without message": func(a *queue.OrchestrationAck) { a.Children[0].Message = "" },
			"child bucket with {":   func(a *queue.OrchestrationAck) { a.Children[0].Bucket = "o:{x}" },
			"cancel execution 0": func(a *queue.OrchestrationAck) {
				a.CancelActivities = []queue.ActivityRef{{ExecutionID: 0, EventID: 1}}
			},
			"clear with value": func(a *queue.OrchestrationAck) {
				a.CustomStatus = &queue.CustomStatusUpdate{Clear: true, Value: "x"}
			},
			"kv empty key": func(a *queue.OrchestrationAck) { a.KV = append(a.KV, queue.KVOp{Op: queue.KVSet, Value: "v"}) },
			"kv NUL key":   func(a *queue.OrchestrationAck) { a.KV = append(a.KV, queue.KVOp{Op: queue.KVClear, Key: "\x00k"}) },
			"kv invalid UTF-8": func(a *queue.OrchestrationAck) {
				a.KV = append(a.KV, queue.KVOp{Op: queue.KVSet, Key: "k2", Value: "\xff"})
			},
			"kv zero op": func(a *queue.OrchestrationAck) { a.KV = append(a.KV, queue.KVOp{Key: "k2"}) },
		}
		for what, mutate := range bad {
			a := e.fullAck("p", it.Token)
			mutate(&a)
			wantPlainErr(e.t, "ack with "+what, e.s.AckOrchestration(e.ctx, a))
		}
		wantSame(e.t, "refused invalid acks", before, e.snap("p", "target", "child"))
		e.fetchNone("o:p")
		e.ack(e.fullAck("p", it.Token))
		e.checkFullAck()
	}},
	{"ack_commits_every_part_together", func(e *env) {
		it := e.fullSetup()
		e.ack(e.fullAck("p", it.Token))
		e.checkFullAck()
		m := e.metrics()
		if m.Instances != 3 || m.Running != 1 || m.Pending != 2 || m.Executions != 1 || m.Events != 3 {
			e.t.Fatalf("metrics = %+v", m)
		}
	}},
	{"retried_ack_commits_once", func(e *env) {
		it := e.fullSetup()
		a := e.fullAck("p", it.Token)
		e.ack(a)
		after := e.snap("p", "target", "child")
		e.ack(a) // the same token again: a resend whose reply was lost
		wantSame(e.t, "a retried ack", after, e.snap("p", "target", "child"))
		e.checkFullAck()
	}},
	{"concurrent_acks_of_one_token_commit_once", func(e *env) {
		it := e.fullSetup()
		a := e.fullAck("p", it.Token)
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = e.s.AckOrchestration(e.ctx, a)
			}()
		}
		wg.Wait()
		for _, err := range errs {
			wantErr(e.t, "concurrent ack", err, nil)
		}
		e.checkFullAck()
		e.workNone("a:act") // exactly one work item was created
		if e.timers() != 1 {
			e.t.Fatalf("timers = %d, want 1", e.timers())
		}
	}},
	{"failed_ack_keeps_the_lock_successful_ack_releases_it", func(e *env) {
		e.start("p", "o:p")
		it := e.turn("p", "m1")
		err := e.ackErr(queue.OrchestrationAck{InstanceID: "p", Token: "nope"})
		wantErr(e.t, "ack with a wrong token", err, queue.ErrLockLost)
		if !e.instance("p").Locked {
			e.t.Fatal("a failed ack released the lock")
		}
		e.enqueue("p", "m2")
		e.fetchNone("o:p")
		e.ack(queue.OrchestrationAck{InstanceID: "p", Token: it.Token})
		if e.instance("p").Locked {
			e.t.Fatal("lock still held after a successful ack")
		}
		next := e.fetchOne("o:p")
		wantEqual(e.t, "next batch", []string{"m2"}, next.Messages)
	}},
	{"child_start_precedes_outbox_message_in_same_ack", func(e *env) {
		e.start("p", "o:p")
		it := e.turn("p", "m1")
		e.ack(queue.OrchestrationAck{InstanceID: "p", Token: it.Token,
			Children: []queue.ChildStart{{InstanceID: "c", Name: "sub", ParentInstanceID: "p", Bucket: "o:c", Message: "c-start"}},
			Outbox:   []queue.OutboundMessage{{InstanceID: "c", Body: "c-event"}},
		})
		c := e.fetchOne("o:c")
		wantEqual(e.t, "child batch", []string{"c-start", "c-event"}, c.Messages)
	}},
}
