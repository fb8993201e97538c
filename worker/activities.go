package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/internal/replay"
	"github.com/duroworker/duroworker/queue"
)

// runningActivity is an activity in progress, tracked so Shutdown can cancel
// and release it.
type runningActivity struct {
	item     queue.FetchedWork
	cancel   context.CancelCauseFunc
	mu       sync.Mutex
	released bool // Shutdown released the item; the result must not be acked
}

// minEmptyFetchWait is the shortest pause after an activity fetch that
// returned nothing.
const minEmptyFetchWait = 100 * time.Millisecond

var (
	errLockLost = errors.New("activity lock lost: another worker may run it")
	errShutdown = errors.New("worker shutting down")
)

// activityLoop fetches activities while slots are free and blocks while
// there is nothing to do.
func (w *Worker) activityLoop(ctx context.Context) {
	defer w.fetchers.Done()
	// read holds the entries the last blocking read returned, locked by
	// the next fetch. fetch and block run on this goroutine, one after the
	// other.
	var read []queue.ReadEntry
	// recoverReads asks the next fetch to lock the entries pending for this
	// node that no fetch locked: on the first fetch (an earlier process
	// with this NodeID may have stopped between a read and its lock), after
	// a failed read (Redis may have delivered entries whose reply was
	// lost), and otherwise at most every NodeHeartbeat (a read an earlier
	// process left blocked in Redis can deliver after this process
	// started, and a lost reply is not always seen as an error). Without
	// it those entries wait 5 minutes.
	recoverReads, lastRecovery := true, time.Time{}
	reader := w.store.NewWorkReader()
	defer reader.Close()
	request := func(n int) queue.FetchWorkRequest {
		req := queue.FetchWorkRequest{
			Buckets: w.activityFetchBuckets(), Max: n, LockTimeout: w.opts.ActivityLockTimeout,
			NodeID: w.opts.NodeID,
		}
		w.sess.FetchFields(&req)
		return req
	}
	// Entries read but not locked when the loop ends (Shutdown during a
	// failed fetch's backoff) go back to the others at once.
	defer func() {
		if len(read) > 0 {
			w.releaseRead(request(len(read)), read)
		}
	}()
	dispatch(ctx, w, dispatcher[queue.FetchedWork]{
		what:      "activities",
		kick:      w.workKick,
		reconnect: w.workReconnect,
		// Due work that an empty fetch left behind is session work this
		// worker may not take now (at Sessions.MaxSessions); do not spin
		// on it. New work still wakes the loop at once.
		minIdle: minEmptyFetchWait,
		fetch: func(requestID string, n int) ([]queue.FetchedWork, time.Duration, error) {
			req := request(n)
			recoverReads = recoverReads || time.Since(lastRecovery) >= w.opts.NodeHeartbeat
			req.RequestID, req.Read, req.RecoverReads = requestID, read, recoverReads
			res, err := w.store.FetchWork(ctx, req)
			if err == nil {
				if recoverReads {
					lastRecovery = time.Now()
				}
				read, recoverReads = nil, false
			}
			return res.Items, res.NextWake, err
		},
		block: func(ctx context.Context, free int, wait time.Duration) {
			var ok bool
			read, ok = w.blockForWork(ctx, reader, request(free), wait)
			recoverReads = recoverReads || !ok
		},
	}, w.actPool)
}

// blockForWork waits up to wait for new entries in the streams of the
// buckets of req (one XREADGROUP ... BLOCK across them, in place of
// pub/sub wake-ups) and returns them, to be locked by the next fetch. The
// reader cuts the read short when ctx ends (CLIENT UNBLOCK; without it the
// read waits out wait, which Shutdown then waits for). Entries a read
// returns once ctx has ended are locked and released again at once (each
// goes back to its stream, the delivery not counted, no session claimed):
// should that fail, they are taken back like expired locks. ok is false
// when the read failed (it may have delivered entries it could not return).
func (w *Worker) blockForWork(ctx context.Context, reader *queue.WorkReader, req queue.FetchWorkRequest, wait time.Duration) (entries []queue.ReadEntry, ok bool) {
	entries, err := reader.Read(ctx, queue.ReadWorkRequest{Buckets: req.Buckets, NodeID: req.NodeID, Count: req.Max, Block: wait})
	if ctx.Err() != nil {
		if len(entries) > 0 {
			w.releaseRead(req, entries)
		}
		return nil, true
	}
	if err != nil {
		w.log.Warn("waiting for activities failed", "err", err)
		idleWait(ctx, nil, min(wait, time.Second))
		return nil, false
	}
	return entries, true
}

// releaseRead locks and abandons entries read but not to be run (shutdown),
// so that another worker takes them without waiting.
func (w *Worker) releaseRead(req queue.FetchWorkRequest, entries []queue.ReadEntry) {
	req.Read, req.Max, req.RequestID = entries, len(entries), uuid.NewString()
	req.SessionOwner, req.MaxSessions = "", 0 // claim nothing: session items go back as they are
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	res, err := w.store.FetchWork(ctx, req)
	for _, it := range res.Items {
		if err == nil {
			err = w.store.AbandonWork(ctx, it.ID, it.Token, 0, false)
		}
	}
	if err != nil {
		w.log.Debug("releasing activities read during shutdown failed; they are taken back later", "err", err)
	}
}

// runActivity runs one fetched work item and acks its completion.
// detach frees its slot early when the activity is abandoned (see
// dispatcher.run).
func (w *Worker) runActivity(item queue.FetchedWork, detach func()) {
	log := newItemLog(w.log, slog.String("work_item", item.ID), slog.String("instance", item.InstanceID), slog.Int("attempt", item.Attempts))
	lock := newLockDeadline(w.opts.ActivityLockTimeout)
	// Store calls use a context that survives shutdown: the ack of a finished
	// activity must still be written.
	storeCtx := context.Background()
	req, err := replay.DecodeActivityRequest(item.Body)
	if err != nil {
		// Cannot be routed back to its orchestration: nothing can ever run it.
		log.Error("dropping malformed activity work item", "err", err, "body", truncate(item.Body, 256))
		if err := w.retryUntilLockDeadline(lock, func(ctx context.Context) error {
			return w.store.AckWork(ctx, item.ID, item.Token, "")
		}); err != nil && !errors.Is(err, queue.ErrWorkNotFound) {
			log.Warn("dropping malformed work item failed", "err", err)
		}
		return
	}
	log.add(slog.String("activity", req.Name), slog.Int64("activity_id", req.EventID))

	if item.Attempts > w.opts.MaxAttempts {
		reason := "the activity did not complete on any attempt (worker crashes or lost locks)"
		if _, lerr := w.lookupActivity(req.Name); lerr != nil {
			reason = fmt.Sprintf("activity %q is not registered on worker %s", req.Name, w.opts.NodeID)
		}
		poison := &replay.Failure{
			Category: engine.CategoryPoison, Kind: engine.KindPoisonActivity, Message: reason,
			Attempts: item.Attempts, MaxAttempts: w.opts.MaxAttempts,
			Instance: req.Instance, Execution: req.Execution, Activity: req.Name, ActivityID: req.EventID,
		}
		body, err := replay.EncodeMessage(req.Completion("", poison))
		if err == nil {
			err = w.retryUntilLockDeadline(lock, func(ctx context.Context) error {
				return w.store.AckWorkPoisoned(ctx, item.ID, item.Token, body,
					queue.DeadLetterNote{Reason: poison.Error(), Attempts: item.Attempts, MaxAttempts: w.opts.MaxAttempts})
			})
		}
		if errors.Is(err, queue.ErrWorkNotFound) {
			err = nil // a resent ack, already applied
		}
		if err != nil {
			log.Warn("recording a poisoned activity failed; it will be retried after its lock expires", "err", err)
			return
		}
		log.Error("activity poisoned", "reason", poison.Error())
		pctx, span := w.tel.startActivity(req, item.Attempts, w.opts.NodeID)
		w.tel.endActivity(pctx, span, time.Now(), req.Name, "poison", poison)
		return
	}
	fn, err := w.lookupActivity(req.Name)
	if err != nil {
		delay := w.opts.unregisteredDelay(item.Attempts)
		log.Warn("activity not registered here; backing off", "retry_in", delay, "max_attempts", w.opts.MaxAttempts)
		if err := w.store.AbandonWork(storeCtx, item.ID, item.Token, delay, true); err != nil {
			log.Warn("abandoning work item failed; its lock will expire", "err", err)
		}
		return
	}

	began := time.Now()
	spanCtx, span := w.tel.startActivity(req, item.Attempts, w.opts.NodeID)
	ctx, cancel := context.WithCancelCause(spanCtx)
	ra := &runningActivity{item: item, cancel: cancel}
	w.mu.Lock()
	w.activities[item.ID] = ra
	w.mu.Unlock()
	cleanup := func() {
		cancel(nil)
		w.mu.Lock()
		if w.activities[item.ID] == ra {
			delete(w.activities, item.ID)
		}
		w.mu.Unlock()
	}
	stopRenew := w.renewActivityLock(ctx, log, item, cancel, lock)
	// The activity runs on this goroutine. Once ctx is cancelled (lost
	// lock, shutdown) it has ActivityCancellationGrace to return; after
	// that it is given up on (abandoned): its slot is freed at once, this
	// goroutine leaves the pool to finish the call on its own, and the
	// result is dropped. state decides which of the two ends wins.
	const running, returned, abandoned = 0, 1, 2
	var state atomic.Int32
	var grace atomic.Pointer[time.Timer]
	stopWatch := context.AfterFunc(ctx, func() {
		grace.Store(time.AfterFunc(w.opts.ActivityCancellationGrace, func() {
			if !state.CompareAndSwap(running, abandoned) {
				return
			}
			stopRenew()
			log.Warn("activity ignored its cancellation for longer than the grace period; its slot is freed and its result will be dropped",
				"grace", w.opts.ActivityCancellationGrace, "cause", context.Cause(ctx))
			w.tel.endActivity(spanCtx, span, began, req.Name, "cancelled", context.Cause(ctx))
			cleanup()
			detach()
		}))
	})
	out, runErr := callActivity(log, fn, replay.NewActivityContext(ctx, req, w.opts.NodeID, item.Attempts, w.opts.Logger).(*engine.ActivityContext), req.Input)
	if !state.CompareAndSwap(running, returned) {
		return // abandoned meanwhile: the grace timer has ended it
	}
	stopWatch()
	if t := grace.Load(); t != nil {
		t.Stop()
	}
	stopRenew()
	defer cleanup()

	ra.mu.Lock()
	released := ra.released
	ra.mu.Unlock()
	if released || errors.Is(context.Cause(ctx), errLockLost) {
		log.Warn("activity result dropped: its work item was released or taken over", "cause", context.Cause(ctx))
		w.tel.endActivity(spanCtx, span, began, req.Name, "cancelled", context.Cause(ctx))
		return
	}
	outcome := "success"
	if runErr != nil {
		outcome = "app_error"
	}
	w.tel.endActivity(spanCtx, span, began, req.Name, outcome, runErr)
	var failure *replay.Failure
	switch {
	case runErr != nil:
		failure = (*replay.Failure)(engine.DetailsOf(runErr, engine.KindActivityFailed))
		log.Debug("activity failed", "err", runErr)
	case len(out) > engine.MaxPayloadBytes:
		failure = replay.ApplicationError(engine.KindActivityFailed,
			fmt.Sprintf("result of activity %s is %d bytes, more than the limit of %d", req.Name, len(out), engine.MaxPayloadBytes))
		out = ""
	}
	w.ackActivity(log, item, lock, req.Completion(out, failure))
}

// ackActivity acks the work item with its completion, retrying transient
// errors until the lock deadline (an applied ack that is resent finds the
// item gone: ErrWorkNotFound).
func (w *Worker) ackActivity(log *itemLog, item queue.FetchedWork, lock *lockDeadline, completion replay.Message) {
	body, err := replay.EncodeMessage(completion)
	if err == nil {
		// Eager dispatch: with a free orchestration slot reserved, the ack
		// locks the turn the completion readies when this worker holds the
		// instance's executor (see eagerTurnClaim).
		claim, reserved := w.eagerTurnClaim(item.InstanceID)
		var next []queue.OrchestrationItem
		// Acks that finish together share a round trip (see ackBatcher).
		err = w.retryUntilLockDeadline(lock, func(ctx context.Context) error {
			res := w.acks.send(ctx, queue.BatchAck{IsWork: true, Work: queue.WorkAck{ID: item.ID, Token: item.Token, Completion: body, Claim: claim}})
			next = nil
			if res.Turn != nil {
				next = []queue.OrchestrationItem{*res.Turn}
			}
			return res.Err
		})
		if err != nil {
			next = nil
		}
		w.orchPool.settle(reserved, next)
	}
	switch {
	case err == nil:
	case errors.Is(err, queue.ErrWorkNotFound):
		// Cancelled by its orchestration meanwhile, or this ack was resent
		// by the Redis client after a lost reply and already applied.
		log.Debug("activity result not needed: its work item is gone (cancelled or already acknowledged)")
	case errors.Is(err, queue.ErrLockLost):
		log.Warn("activity result dropped: another worker took the work item over", "err", err)
	default:
		log.Warn("acknowledging activity failed; it will be redelivered after its lock expires", "err", err)
	}
}

// eagerTurnClaim reserves an orchestration slot for the next turn of
// instance when eager dispatch may lock it: it is on, this worker runs
// orchestrations, holds the instance's executor in its replay cache and
// still serves the ready bucket the instance was left in. It returns the
// claim and 1, or 0 when nothing was reserved; the caller settles the
// reservation with w.orchPool.settle.
func (w *Worker) eagerTurnClaim(instance string) (queue.TurnClaim, int) {
	if w.opts.DisableEagerDispatch || w.orchPool == nil || instance == "" {
		return queue.TurnClaim{}, 0
	}
	bucket, ok := w.cache.readyBucket(instance)
	if !ok || bucket == "" || !w.readsOrchestrationBucket(bucket) {
		return queue.TurnClaim{}, 0
	}
	if w.orchPool.reserve(1) == 0 {
		return queue.TurnClaim{}, 0
	}
	return queue.TurnClaim{RequestID: uuid.NewString(), CacheOwner: w.cacheOwner(), ReadyBucket: bucket,
		LockTimeout: w.opts.OrchestrationLockTimeout, NodeID: w.opts.NodeID, MaxMessages: DefaultMaxMessagesPerTurn}, 1
}

// callActivity runs fn, turning a panic into an application error. The
// error (stored in history and seen by clients) carries the panic message
// only; the goroutine stack, with this worker's file paths, goes to log.
func callActivity(log *itemLog, fn engine.ActivityFunc, ctx *engine.ActivityContext, input string) (out string, err error) {
	defer func() {
		if r := recover(); r != nil {
			log.Error("activity panicked", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = replay.ApplicationError(engine.KindActivityFailed, fmt.Sprintf("activity panicked: %v", r))
		}
	}()
	return fn(ctx, input)
}

// renewActivityLock renews the work item's lock every third of the lock
// timeout while the activity runs; when the lock is lost it cancels the
// activity's context. Renewal never counts as a delivery attempt.
func (w *Worker) renewActivityLock(ctx context.Context, log *itemLog, item queue.FetchedWork, cancel context.CancelCauseFunc, deadline *lockDeadline) func() {
	return renewLock(ctx, w.opts.ActivityLockTimeout, deadline,
		func(ctx context.Context) error {
			return w.store.RenewWork(ctx, item.ID, item.Token, w.opts.ActivityLockTimeout)
		},
		func(err error) bool {
			if errors.Is(err, queue.ErrLockLost) || errors.Is(err, queue.ErrWorkNotFound) {
				log.Warn("activity lock lost; cancelling the activity", "err", err)
				cancel(errLockLost)
				return true
			}
			log.Warn("renewing activity lock failed; will retry", "err", err)
			return false
		})
}

// releaseActivities cancels every running activity and releases its work item
// so another worker can run it at once, without counting the attempt.
func (w *Worker) releaseActivities() {
	w.mu.Lock()
	running := make([]*runningActivity, 0, len(w.activities))
	for _, ra := range w.activities {
		running = append(running, ra)
	}
	w.mu.Unlock()
	for _, ra := range running {
		ra.mu.Lock()
		ra.released = true
		ra.mu.Unlock()
		ra.cancel(errShutdown)
		if err := w.store.AbandonWork(context.Background(), ra.item.ID, ra.item.Token, 0, false); err != nil {
			w.log.Warn("releasing activity at shutdown failed; its lock will expire", "work_item", ra.item.ID, "err", err)
		}
	}
}

// lookupActivity finds a user activity or a built-in one.
func (w *Worker) lookupActivity(name string) (engine.ActivityFunc, error) {
	if name == replay.SysActivityGetKV {
		return w.getKVActivity, nil
	}
	return w.acts.Lookup(name)
}

// getKVActivity is the built-in activity behind
// OrchestrationContext.GetKVFromInstance: it reads another instance's
// key-value state (committed and current execution's writes).
func (w *Worker) getKVActivity(ctx *engine.ActivityContext, input string) (string, error) {
	req, err := engine.Decode[replay.KVLookupRequest](input)
	if err != nil {
		return "", replay.ApplicationError(engine.KindActivityFailed, "get-kv: "+err.Error())
	}
	v, ok, err := w.store.KV(ctx, req.Instance, req.Key)
	if errors.Is(err, queue.ErrInstanceNotFound) {
		return engine.Encode(engine.KVLookup{})
	}
	if err != nil {
		return "", err
	}
	return engine.Encode(engine.KVLookup{Value: v, Found: ok})
}
