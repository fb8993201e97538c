package queue

import (
	"context"
	"errors"
	"io"
	"slices"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/internal/redistest"
)

// batchHook counts script round trips (single commands and pipelines) and the
// EVALSHA calls of each script, and can make the next pipeline lose its
// replies (failNext: the commands run, the caller gets io.EOF) or run a
// function before it is sent (beforeNext).
type batchHook struct {
	mu         sync.Mutex
	singles    int
	pipelines  int
	evalsha    map[string]int // by script SHA
	failNext   bool
	beforeNext func()
}

func newBatchHook() *batchHook { return &batchHook{evalsha: map[string]int{}} }

func (h *batchHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *batchHook) note(cmd redis.Cmder) {
	if cmd.Name() == "evalsha" {
		h.evalsha[cmd.Args()[1].(string)]++
	}
}

func (h *batchHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.mu.Lock()
		if isScriptCmd(cmd) {
			h.singles++
		}
		h.note(cmd)
		h.mu.Unlock()
		return next(ctx, cmd)
	}
}

func (h *batchHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.mu.Lock()
		if slices.ContainsFunc(cmds, isScriptCmd) {
			h.pipelines++ // not the connection set-up of a new connection
		}
		for _, c := range cmds {
			h.note(c)
		}
		fail, before := h.failNext, h.beforeNext
		h.failNext, h.beforeNext = false, nil
		h.mu.Unlock()
		if before != nil {
			before()
		}
		err := next(ctx, cmds)
		if fail {
			for _, c := range cmds {
				c.SetErr(io.EOF)
			}
			return io.EOF
		}
		return err
	}
}

func isScriptCmd(cmd redis.Cmder) bool {
	switch cmd.Name() {
	case "evalsha", "eval", "script":
		return true
	}
	return false
}

func (h *batchHook) reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.singles, h.pipelines = 0, 0
	h.evalsha = map[string]int{}
}

func (h *batchHook) counts() (singles, pipelines int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.singles, h.pipelines
}

// batchFixture prepares, on e, the acks of a mixed batch: a turn of "o1"
// that schedules two items in a:x and claims one (and its resend), a turn
// of "o2" with a stale token, the completion of a work item of "p" that
// claims p's next turn (p's executor is cached by "cache:w1"), a plain
// work completion of "p", a completion of a missing work item, and an
// invalid turn ack (execution 0). It returns them.
func (e *env) batchFixture() []BatchAck {
	e.t.Helper()
	e.create("o1", "o:b", "start")
	o1 := e.fetchOne("o:b", longLock)
	e.create("o2", "o:b", "start")
	o2 := e.fetchOne("o:b", longLock)
	e.ack(OrchestrationAck{InstanceID: o2.InstanceID, Token: o2.Token})
	e.create("p", "o:p", "start")
	p := e.fetchOne("o:p", longLock)
	e.ack(OrchestrationAck{InstanceID: "p", Token: p.Token, ReadyBucket: "o:p", CacheOwner: "cache:w1",
		Activities: []WorkItem{{Bucket: "a:p", Body: "w1"}, {Bucket: "a:p", Body: "w2"}}})
	ws := e.fetchWork(longLock, "a:p").Items
	if len(ws) != 2 {
		e.t.Fatalf("fetched %d items of p, want 2", len(ws))
	}
	o1ack := OrchestrationAck{InstanceID: o1.InstanceID, Token: o1.Token, ExecutionID: 1, Status: StatusRunning,
		NewEvents: []string{"e1"}, Activities: []WorkItem{{Bucket: "a:x", Body: "x1"}, {Bucket: "a:x", Body: "x2"}}}
	claim := WorkClaim{RequestID: "batch-claim", Buckets: []string{"a:x"}, Max: 1, LockTimeout: longLock, NodeID: "n1"}
	return []BatchAck{
		{Orchestration: o1ack, WorkClaim: claim},
		{Orchestration: OrchestrationAck{InstanceID: o2.InstanceID, Token: "stale", ExecutionID: 1, Status: StatusRunning}},
		{IsWork: true, Work: WorkAck{ID: ws[0].ID, Token: ws[0].Token, Completion: "done1",
			Claim: TurnClaim{RequestID: "batch-turn", CacheOwner: "cache:w1", ReadyBucket: "o:p", LockTimeout: longLock, NodeID: "n1"}}},
		{IsWork: true, Work: WorkAck{ID: ws[1].ID, Token: ws[1].Token, Completion: "done2"}},
		{IsWork: true, Work: WorkAck{ID: "404", Token: "t", Completion: "c"}},
		{Orchestration: OrchestrationAck{InstanceID: "o1", Token: o1.Token, Status: StatusRunning}},
		{Orchestration: o1ack, WorkClaim: claim}, // a resend of the first ack, in the same batch
	}
}

// checkBatchFixture checks the results of a first run of batchFixture's
// acks (firstRun) or of a resend of all of them.
func (e *env) checkBatchFixture(acks []BatchAck, res []BatchResult, firstRun bool) {
	e.t.Helper()
	if len(res) != len(acks) {
		e.t.Fatalf("%d results for %d acks", len(res), len(acks))
	}
	// o1: applied once, claims x1 (both runs report the claimed item)
	if r := res[0]; r.Err != nil || r.Orchestration.Applied != firstRun || len(r.Orchestration.Work) != 1 || r.Orchestration.Work[0].Body != "x1" {
		e.t.Errorf("o1 ack: %+v", r)
	}
	if r := res[6]; r.Err != nil || r.Orchestration.Applied || len(r.Orchestration.Work) != 1 || r.Orchestration.Work[0].Body != "x1" {
		e.t.Errorf("o1 ack resent in the batch: %+v, want not applied and the same claimed item", r)
	}
	wantEqual(e.t, "o1 history", []string{"e1"}, e.history("o1", 1))
	wantErr(e.t, "stale o2 ack", res[1].Err, ErrLockLost)
	if firstRun {
		if r := res[2]; r.Err != nil || r.Turn == nil || r.Turn.InstanceID != "p" {
			e.t.Errorf("work ack with turn claim: %+v", r)
		}
		if res[3].Err != nil {
			e.t.Errorf("plain work ack: %v", res[3].Err)
		}
	} else {
		// the turn claim's record answers the resend; the plain ack finds its item gone
		if r := res[2]; r.Err != nil || r.Turn == nil || r.Turn.InstanceID != "p" {
			e.t.Errorf("resent work ack with turn claim: %+v", r)
		}
		wantErr(e.t, "resent plain work ack", res[3].Err, ErrWorkNotFound)
	}
	wantErr(e.t, "missing work item", res[4].Err, ErrWorkNotFound)
	if res[5].Err == nil || errors.Is(res[5].Err, ErrLockLost) {
		e.t.Errorf("invalid ack: err = %v, want a validation error", res[5].Err)
	}
}

// TestAckBatchMixed: one pipeline carries orchestration and work acks,
// with and without claims; each gets the result and error of its single
// call, and the batch's failures leave the other acks applied.
func TestAckBatchMixed(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		acks := e.batchFixture()
		h := newBatchHook()
		e.rdb.AddHook(h)
		res := e.s.AckBatch(e.ctx, acks)
		// ack_work.lua is not in the script cache yet: a second pipeline loads it
		if singles, pipes := h.counts(); singles != 0 || pipes != 2 {
			t.Errorf("round trips: %d single + %d pipelines, want 2 pipelines", singles, pipes)
		}
		e.checkBatchFixture(acks, res, true)
		h.reset()
		res2 := e.s.AckBatch(e.ctx, acks)
		if singles, pipes := h.counts(); singles != 0 || pipes != 1 {
			t.Errorf("resend: %d single + %d pipelines, want one pipeline", singles, pipes)
		}
		e.checkBatchFixture(acks, res2, false)
		wantEqual(t, "p's claimed turn", []string{"done1"}, res[2].Turn.Messages)
		e.fetchNone("o:p") // p's turn is locked by the claim; done2 arrived after it
		wantEqual(t, "unclaimed item of o1", []string{"x2"}, workBodies(e.fetchWork(longLock, "a:x").Items))
	})
}

// TestAckBatchReplyLost: a batch whose replies are lost (the commands ran,
// the connection failed: a transient error for every item) is resent, and
// every ack answers as a resend of its single call does: Applied false,
// the claimed items again, ErrWorkNotFound for plain work acks.
func TestAckBatchReplyLost(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		acks := e.batchFixture()
		for _, sc := range []*redis.Script{e.s.ackOrch, e.s.ackWork} {
			if err := sc.Load(e.ctx, e.rdb).Err(); err != nil {
				t.Fatal(err)
			}
		}
		h := newBatchHook()
		e.rdb.AddHook(h)
		h.failNext = true
		res := e.s.AckBatch(e.ctx, acks)
		for i, r := range res {
			if i == 5 {
				continue // invalid: never sent
			}
			if !IsTransient(r.Err) {
				t.Errorf("ack %d with its reply lost: err = %v, want a transient error", i, r.Err)
			}
		}
		e.checkBatchFixture(acks, e.s.AckBatch(e.ctx, acks), false)
	})
}

// TestAckBatchNoScript: the script cache is flushed after the batch is
// built; ack_orch.lua is loaded again but ack_work.lua is not, so in the
// first pipeline the orchestration acks run and the work acks get
// NOSCRIPT. Only the work acks are resent, after loading their script, in
// a second pipeline; every ack runs once. Real server only (miniredis keeps
// its script cache).
func TestAckBatchNoScript(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	e := &env{t: t, ctx: context.Background(), rdb: rdb, b: redistest.Backend{Real: true}, s: New(rdb, Options{})}
	e.k = e.s.Keys()
	acks := e.batchFixture()
	h := newBatchHook()
	rdb.AddHook(h)
	other := srv.Client(t)
	h.beforeNext = func() {
		if err := other.ScriptFlush(e.ctx).Err(); err != nil {
			t.Errorf("SCRIPT FLUSH: %v", err)
		}
		if err := e.s.ackOrch.Load(e.ctx, other).Err(); err != nil {
			t.Errorf("SCRIPT LOAD: %v", err)
		}
	}
	res := e.s.AckBatch(e.ctx, acks)
	singles, pipes := h.counts()
	h.mu.Lock()
	orch, work := h.evalsha[e.s.ackOrch.Hash()], h.evalsha[e.s.ackWork.Hash()]
	h.mu.Unlock()
	e.checkBatchFixture(acks, res, true)
	if singles != 0 || pipes != 2 {
		t.Errorf("round trips: %d single + %d pipelines, want 2 pipelines", singles, pipes)
	}
	if orch != 3 || work != 6 {
		t.Errorf("EVALSHA ack_orch %d, ack_work %d; want 3 (not resent) and 6 (3 resent)", orch, work)
	}
}

// TestAckBatchSingle: a batch of one ack is a single call (no pipeline),
// and so is a batch whose other acks are invalid.
func TestAckBatchSingle(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		acks := e.batchFixture()
		h := newBatchHook()
		e.rdb.AddHook(h)
		res := e.s.AckBatch(e.ctx, []BatchAck{acks[3], acks[5]})
		if res[0].Err != nil || res[1].Err == nil {
			t.Errorf("results: %+v", res)
		}
		// EVALSHA, and EVAL when ack_work.lua is not cached yet
		if singles, pipes := h.counts(); singles < 1 || pipes != 0 {
			t.Errorf("round trips: %d single + %d pipelines, want single calls", singles, pipes)
		}
	})
}

func workBodies(items []FetchedWork) []string {
	out := make([]string, len(items))
	for i, w := range items {
		out[i] = w.Body
	}
	return out
}
