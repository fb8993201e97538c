package worker

import (
	"context"
	"sync"

	"github.com/duroworker/duroworker/queue"
)

// ackBatcher sends the acks of turns and activities (natural batching, no
// timer): an ack that finds no ack in flight goes out at once, alone;
// acks that arrive while one is in flight wait for it and then go out
// together, up to max of them per round trip, as one pipeline
// (queue.Store.AckBatch). At most one ack round trip is in flight at a
// time, so a burst of acks costs few round trips and an ack never waits
// for more than the round trip before it. Each caller gets its own result
// and retries transient errors itself (retryUntilLockDeadline), exactly as
// with single calls.
type ackBatcher struct {
	store *queue.Store
	max   int // at most this many acks per round trip; <= 1 sends every ack alone
	// onSend, when set (by tests), is told the size of every round trip
	// of acks, single ones included.
	onSend func(n int)

	mu      sync.Mutex
	sending bool          // an ack round trip is in flight
	queued  []*pendingAck // waiting for it, in arrival order
}

// pendingAck is an ack waiting in the batcher's queue.
type pendingAck struct {
	ack queue.BatchAck
	// ctx is the caller's, live until the result is in: the batch
	// that carries the ack runs with the context of its latest deadline.
	ctx  context.Context
	res  queue.BatchResult
	done chan struct{} // capacity 1: told once the result is in res
}

func newAckBatcher(store *queue.Store, max int) *ackBatcher {
	return &ackBatcher{store: store, max: max}
}

// send acks a and returns its result. ctx must stay live until send
// returns; its deadline bounds the round trip that carries a (the latest
// deadline of the acks in a batch bounds the batch).
func (b *ackBatcher) send(ctx context.Context, a queue.BatchAck) queue.BatchResult {
	if b.max <= 1 {
		b.sent(1)
		return b.single(ctx, &a)
	}
	b.mu.Lock()
	if !b.sending {
		// Idle: no added latency, and no goroutine or channel.
		b.sending = true
		b.mu.Unlock()
		b.sent(1)
		defer b.next()
		return b.single(ctx, &a)
	}
	p := pendingAcks.Get().(*pendingAck)
	p.ack, p.ctx = a, ctx
	b.queued = append(b.queued, p)
	b.mu.Unlock()
	<-p.done
	r := p.res
	*p = pendingAck{done: p.done}
	pendingAcks.Put(p)
	return r
}

// pendingAcks recycles pendingAck values with their done channels.
var pendingAcks = sync.Pool{New: func() any { return &pendingAck{done: make(chan struct{}, 1)} }}

// single sends a alone, like the store's single ack calls.
func (b *ackBatcher) single(ctx context.Context, a *queue.BatchAck) queue.BatchResult {
	if a.IsWork {
		turn, err := b.store.AckWorkClaim(ctx, a.Work.ID, a.Work.Token, a.Work.Completion, a.Work.Claim)
		return queue.BatchResult{Turn: turn, Err: err}
	}
	res, err := b.store.AckOrchestrationClaim(ctx, a.Orchestration, a.WorkClaim)
	return queue.BatchResult{Orchestration: res, Err: err}
}

// next ends a round trip: the acks queued meanwhile go out on a goroutine
// of their own (the caller returns to its work), or the batcher is idle.
func (b *ackBatcher) next() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.queued) == 0 {
		b.sending = false
		return
	}
	go b.drain()
}

// drain sends the queued acks, up to max per round trip, until none is
// left; then the batcher is idle.
func (b *ackBatcher) drain() {
	var batch []*pendingAck
	var acks []queue.BatchAck
	for {
		b.mu.Lock()
		if len(b.queued) == 0 {
			b.sending = false
			b.mu.Unlock()
			return
		}
		n := min(len(b.queued), b.max)
		batch = append(batch[:0], b.queued[:n]...)
		rest := copy(b.queued, b.queued[n:])
		clear(b.queued[rest:])
		b.queued = b.queued[:rest]
		b.mu.Unlock()

		acks = acks[:0]
		// The context with the latest deadline (or none) bounds the batch.
		ctx := batch[0].ctx
		for _, p := range batch {
			acks = append(acks, p.ack)
			if later, ok := laterDeadline(p.ctx, ctx); ok {
				ctx = later
			}
		}
		b.sent(len(acks))
		res := b.store.AckBatch(ctx, acks)
		for i, p := range batch {
			p.res = res[i]
			p.done <- struct{}{} // p is its caller's again
		}
		clear(batch)
		clear(acks)
	}
}

// laterDeadline returns a and true when a's deadline is later than b's
// (no deadline is the latest).
func laterDeadline(a, b context.Context) (context.Context, bool) {
	da, okA := a.Deadline()
	db, okB := b.Deadline()
	if !okB {
		return nil, false
	}
	return a, !okA || da.After(db)
}

func (b *ackBatcher) sent(n int) {
	if b.onSend != nil {
		b.onSend(n)
	}
}
