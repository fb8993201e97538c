package queue

import (
	"context"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/internal/retry"
)

// BatchAck is one ack of AckBatch: the work ack Work when IsWork is set,
// else the orchestration ack Orchestration. (Values, not pointers: an
// ack waiting for a batch is then one allocation.)
type BatchAck struct {
	IsWork bool
	// Orchestration is acked like AckOrchestrationClaim(ctx,
	// Orchestration, WorkClaim).
	Orchestration OrchestrationAck
	WorkClaim     WorkClaim
	// Work is acked like AckWorkClaim (or AckWork when its Claim claims
	// nothing).
	Work WorkAck
}

// WorkAck is a work ack of a batch (see AckWorkClaim for the fields).
type WorkAck struct {
	ID, Token, Completion string
	Claim                 TurnClaim
}

// BatchResult is the outcome of one ack of AckBatch: the error, the result
// of an orchestration ack, or the turn a work ack claimed.
type BatchResult struct {
	// Err is what the single call would have returned (ErrLockLost,
	// ErrWorkNotFound, a connection error, ...).
	Err error
	// Orchestration is AckOrchestrationClaim's result.
	Orchestration AckOrchestrationResult
	// Turn is AckWorkClaim's result.
	Turn *OrchestrationItem
}

// ackSources are the sources of the scripts of a batch, by hash, for
// SCRIPT LOAD after NOSCRIPT.
var ackSources = func() map[string]string {
	m := map[string]string{}
	for _, name := range []string{"ack_orch.lua", "ack_work.lua"} {
		src := scriptSource(name)
		m[redis.NewScript(src).Hash()] = src
	}
	return m
}()

// maxNoScriptRounds bounds the resends of a batch whose items keep getting
// NOSCRIPT (the script cache flushed again between SCRIPT LOAD and EVALSHA).
const maxNoScriptRounds = 3

// AckBatch sends acks to Redis in one round trip (a pipeline of EVALSHA
// calls) and returns their results, one per ack in order. Each ack runs on
// its own, exactly as the single call would (AckOrchestrationClaim,
// AckWorkClaim), with its own atomicity and its own error: one ack's
// ErrLockLost or invalid request does not affect the others, and the
// acks are not atomic together. Items that the server answers with
// NOSCRIPT (its script cache was flushed, e.g. after a restart) are resent
// in a second pipeline that loads the scripts first; items it refused
// without running (LOADING, BUSY, ...) are resent with backoff within ctx
// like single calls. A connection error reaches every item the pipeline
// did not answer; such acks may or may not have run, and, like single
// acks, may be resent (an applied orchestration ack answers Applied false;
// an applied work ack answers ErrWorkNotFound). A batch of one ack is a
// single call.
func (s *Store) AckBatch(ctx context.Context, acks []BatchAck) []BatchResult {
	res := make([]BatchResult, len(acks))
	calls := make([]ackCall, len(acks))
	pending := make([]int, 0, len(acks))
	for i := range acks {
		c, err := s.prepareAck(&acks[i])
		if err != nil {
			res[i].Err = err
			continue
		}
		calls[i] = c
		pending = append(pending, i)
	}
	if len(pending) == 1 {
		res[pending[0]] = calls[pending[0]].run(ctx, s)
		return res
	}
	var b *backoff.ExponentialBackOff
	var load []*redis.Script // scripts that answered NOSCRIPT in the last round
	for round := 0; len(pending) > 0; round++ {
		pipe := s.rdb.Pipeline()
		for _, sc := range load {
			// Not sc.Load: it would store the hash of a reply not read yet.
			pipe.ScriptLoad(ctx, ackSources[sc.Hash()])
		}
		for _, i := range pending {
			calls[i].cmd = pipe.EvalSha(ctx, calls[i].script.Hash(), calls[i].keys, calls[i].args...)
		}
		_, _ = pipe.Exec(ctx) // every command carries its own error
		load = load[:0]
		again := pending[:0]
		notRun := false
		for _, i := range pending {
			err := calls[i].cmd.Err()
			switch {
			case redis.HasErrorPrefix(err, "NOSCRIPT") && round < maxNoScriptRounds:
				again = append(again, i)
				if !containsScript(load, calls[i].script) {
					load = append(load, calls[i].script)
				}
			case isNotRun(err):
				again = append(again, i)
				notRun = true
			default:
				res[i] = calls[i].result(calls[i].cmd.Val(), err)
			}
		}
		pending = again
		if !notRun || len(pending) == 0 {
			continue
		}
		// Like scriptRunner: wait out a server that refuses commands.
		if b == nil {
			b = retry.New(50*time.Millisecond, time.Second)
			if _, ok := ctx.Deadline(); !ok {
				b.MaxElapsedTime = maxNotRunWait
			}
		}
		wait := b.NextBackOff()
		if wait != backoff.Stop && sleepCtx(ctx, wait) {
			continue
		}
		for _, i := range pending {
			res[i] = calls[i].result(nil, calls[i].cmd.Err())
		}
		break
	}
	return res
}

// sleepCtx waits for d and reports true, or false when ctx ends first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func containsScript(list []*redis.Script, s *redis.Script) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// ackCall is one prepared script call of a batch and how its reply is read.
type ackCall struct {
	script *redis.Script
	keys   []string
	args   []any
	orch   bool // ack_orch.lua, else ack_work.lua
	claim  bool // the reply carries claimed items
	id     string
	cmd    *redis.Cmd // its command in the batch's last pipeline
}

// prepareAck validates a and returns its script call, applying the
// defaults of AckOrchestrationClaim and AckWorkClaim.
func (s *Store) prepareAck(a *BatchAck) (ackCall, error) {
	if a.IsWork {
		return s.prepareWorkAck(a.Work.ID, a.Work.Token, a.Work.Completion, a.Work.Claim)
	}
	return s.prepareOrchAck(a.Orchestration, a.WorkClaim)
}

// prepareOrchAck is the call of AckOrchestrationClaim(ack, claim).
func (s *Store) prepareOrchAck(ack OrchestrationAck, claim WorkClaim) (ackCall, error) {
	c := ackCall{script: s.ackOrch, orch: true, id: ack.InstanceID}
	var cl *WorkClaim
	if claim.Max > 0 && ack.DeadLetter == nil {
		if claim.LockTimeout <= 0 {
			return c, fmt.Errorf("acking orchestration %s: claim LockTimeout must be positive, got %v", ack.InstanceID, claim.LockTimeout)
		}
		if claim.RequestID == "" {
			claim.RequestID = newRequestID()
		}
		cl, c.claim = &claim, true
	}
	var err error
	c.keys, c.args, err = s.ackOrchArgs(ack, cl)
	return c, err
}

// prepareWorkAck is the call of AckWorkClaim(id, token, completion, claim).
func (s *Store) prepareWorkAck(id, token, completion string, claim TurnClaim) (ackCall, error) {
	c := ackCall{script: s.ackWork, id: id}
	var cl *TurnClaim
	if claim.CacheOwner != "" && claim.ReadyBucket != "" {
		if claim.LockTimeout <= 0 {
			return c, fmt.Errorf("acking work %s: claim LockTimeout must be positive, got %v", id, claim.LockTimeout)
		}
		if claim.RequestID == "" {
			claim.RequestID = newRequestID()
		}
		if claim.MaxMessages <= 0 {
			claim.MaxMessages = defaultMaxMessages
		}
		cl, c.claim = &claim, true
	}
	c.keys, c.args = s.ackWorkArgs(id, token, completion, nil, cl)
	return c, nil
}

// run sends c alone (EVALSHA, then EVAL on NOSCRIPT; see scriptRunner).
func (c ackCall) run(ctx context.Context, s *Store) BatchResult {
	raw, err := c.script.Run(ctx, s.rdb, c.keys, c.args...).Result()
	return c.result(raw, err)
}

// result decodes the reply (or error) of c as the single call would.
func (c ackCall) result(raw any, err error) BatchResult {
	what := "work"
	if c.orch {
		what = "orchestration"
	}
	if err != nil {
		return BatchResult{Err: fmt.Errorf("acking %s %s: %w", what, c.id, mapScriptError(err))}
	}
	var r BatchResult
	switch {
	case c.orch && !c.claim:
		n, err := replyInt(raw)
		r.Orchestration.Applied, r.Err = n == 1, err
	case c.orch:
		items, applied, err := decodeClaimReply(raw, decodeWorkItem)
		r.Orchestration = AckOrchestrationResult{Applied: applied == 1, Work: items}
		r.Err = err
	case c.claim:
		items, _, err := decodeClaimReply(raw, decodeOrchItem)
		if len(items) > 0 {
			r.Turn = &items[0]
		}
		r.Err = err
	}
	if r.Err != nil {
		r = BatchResult{Err: fmt.Errorf("acking %s %s: decoding reply: %w", what, c.id, r.Err)}
	}
	return r
}
