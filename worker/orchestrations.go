package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/duroworker/duroworker/capability"
	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/internal/replay"
	"github.com/duroworker/duroworker/queue"
)

// orchestrationLoop fetches orchestration turns while slots are free and
// blocks while there is nothing to do.
func (w *Worker) orchestrationLoop(ctx context.Context) {
	defer w.fetchers.Done()
	pinRefresh := time.NewTicker(30 * time.Second)
	defer pinRefresh.Stop()
	dispatch(ctx, w, dispatcher[queue.OrchestrationItem]{
		what:      "orchestrations",
		kick:      w.orchKick,
		reconnect: w.orchReconnect,
		before: func() {
			select {
			case <-w.refreshPins:
				w.refreshEnginePins(ctx)
			case <-pinRefresh.C:
				w.refreshEnginePins(ctx)
			default:
			}
		},
		fetch: func(requestID string, n int) ([]queue.OrchestrationItem, time.Duration, error) {
			res, err := w.store.FetchOrchestrations(ctx, queue.FetchOrchestrationsRequest{
				RequestID:     requestID,
				Buckets:       w.orchestrationFetchBuckets(),
				Max:           n,
				MaxMessages:   DefaultMaxMessagesPerTurn,
				LockTimeout:   w.opts.OrchestrationLockTimeout,
				CacheOwner:    w.cacheOwner(),
				PromoteTimers: DefaultTimerPromotionBatch,
				NodeID:        w.opts.NodeID,
			})
			return res.Items, res.NextWake, err
		},
	}, w.orchPool)
}

// replays reports whether pin, an execution's engine version, is in this
// worker's replay range. Results are cached per pin (a handful of engine
// versions; bounded) instead of parsing the version at every turn.
func (w *Worker) replays(pin string) bool {
	if v, ok := w.pinRange.Load(pin); ok {
		return v.(bool)
	}
	ok, err := w.serves.ReplayRange.ContainsString(pin)
	ok = ok && err == nil
	if w.pinRangeLen.Load() < maxCachedPins {
		if _, loaded := w.pinRange.LoadOrStore(pin, ok); !loaded {
			w.pinRangeLen.Add(1)
		}
	}
	return ok
}

// maxCachedPins bounds the cache of replays.
const maxCachedPins = 64

func (w *Worker) cacheOwner() string {
	if !w.cache.enabled() {
		return ""
	}
	return "cache:" + w.opts.NodeID
}

// turn is the state of one fetched orchestration item while it is processed.
type turn struct {
	w      *Worker
	item   queue.OrchestrationItem
	lock   *lockDeadline // when the instance lock expires, as far as this worker knows
	meta   queue.InstanceRecord
	parent *parentLink // known parent link, when already looked up
	log    *itemLog
}

// runTurn processes one fetched instance: decide the execution, replay,
// run the turn, and ack; or abandon with backoff; or poison.
func (w *Worker) runTurn(item queue.OrchestrationItem) {
	t := &turn{w: w, item: item, meta: item.Instance, lock: newLockDeadline(w.opts.OrchestrationLockTimeout)}
	t.log = newItemLog(w.log, slog.String("instance", item.InstanceID), slog.String("orchestration", t.meta.Name), slog.Int("attempt", item.Attempts))
	ctx, cancel := context.WithCancel(context.Background()) // outlives shutdown: a started turn is finished
	defer cancel()
	stopRenew := w.renewTurnLock(ctx, item, t.lock)
	defer stopRenew()

	msgs, raws := t.decodeMessages()
	newExecution := t.meta.Status == "Pending" || t.meta.ExecutionID == 0 || (len(msgs) > 0 && msgs[0].IsStart())
	if newExecution {
		t.startExecution(ctx, msgs, raws)
	} else {
		t.continueExecution(ctx, msgs, raws)
	}
}

// decodeMessages decodes the batch; raws holds the stored form of each
// decoded message.
func (t *turn) decodeMessages() (msgs []replay.Message, raws []string) {
	msgs = make([]replay.Message, 0, len(t.item.Messages))
	for _, raw := range t.item.Messages {
		m, err := replay.DecodeMessage(raw)
		if err != nil {
			// A malformed message can never be processed; keeping it would
			// block the instance. It is consumed by this turn and logged.
			t.log.Error("dropping malformed message", "err", err, "message", truncate(raw, 256))
			continue
		}
		msgs = append(msgs, m)
		raws = append(raws, raw)
	}
	return msgs, raws
}

// startExecution handles a batch that begins with a start or continue-as-new
// message: resolve the version, then run the first turn.
func (t *turn) startExecution(ctx context.Context, msgs []replay.Message, raws []string) {
	w := t.w
	if len(msgs) == 0 || !msgs[0].IsStart() {
		// The start message was malformed (dropped above): the instance can
		// never run. End it with a reason instead of leaving it stuck.
		synthetic := replay.Message{Kind: replay.MessageStart, Name: t.meta.Name, Version: t.meta.Version}
		t.poison(ctx, int64(t.meta.ExecutionID)+1, nil, synthetic, "the instance has no valid start message", engine.KindPoisonOrchestration)
		return
	}
	start := msgs[0]
	execution := int64(t.meta.ExecutionID) + 1
	fn, version, err := w.orchs.Resolve(start.Name, start.Version)
	if err != nil {
		reason := fmt.Sprintf("orchestration %s is not registered on worker %s: %v", describeVersion(start.Name, start.Version), w.opts.NodeID, err)
		if t.item.Attempts > w.opts.MaxAttempts {
			t.poison(ctx, execution, nil, start, reason, engine.KindPoisonOrchestration)
			return
		}
		t.backoffUnregistered(ctx, reason)
		return
	}
	if start.Kind == replay.MessageContinueAsNew && start.Version == "" && !w.orchs.Policy(start.Name).IsExact() &&
		capability.Older(version, start.PreviousVersion) {
		// This node's Latest is older than the version the instance already
		// ran: an upgraded node must take it (no downgrade in a rolling
		// upgrade). Pin with Exact or ContinueAsNewVersioned to go back.
		reason := fmt.Sprintf("orchestration %s continued as new from %s but worker %s has only up to %s",
			start.Name, start.PreviousVersion, w.opts.NodeID, version)
		if t.item.Attempts > w.opts.MaxAttempts {
			t.poison(ctx, execution, nil, start, reason, engine.KindPoisonOrchestration)
			return
		}
		t.backoffUnregistered(ctx, reason)
		return
	}
	if t.item.Attempts > w.opts.MaxAttempts {
		t.poison(ctx, execution, nil, start, fmt.Sprintf("the start of %s@%s failed on every attempt", start.Name, version), engine.KindPoisonOrchestration)
		return
	}
	info := replay.ExecutionInfo{InstanceID: t.item.InstanceID, ExecutionID: execution, Name: start.Name, Version: version}
	x, err := replay.NewExecutor(replay.BindOrchestration(fn), info, nil, replay.ExecutorOptions{Logger: w.opts.Logger, KV: kvSnapshot(t.item.KV)})
	if err != nil {
		t.abandon(ctx, time.Second, err)
		return
	}
	t.runAndAck(ctx, x, msgs, raws, engine.Version)
}

// continueExecution runs a turn of the current execution, from the sticky
// cache or from its stored history.
func (t *turn) continueExecution(ctx context.Context, msgs []replay.Message, raws []string) {
	w := t.w
	execution := int64(t.meta.ExecutionID)
	pin := t.meta.EnginePin
	if pin != "" {
		if !w.replays(pin) {
			// Slipped through the fetch filter (a range changed): never
			// replay it with this engine; leave it for a compatible worker.
			t.log.Warn("execution pinned to an engine version outside this worker's range; releasing it",
				"pin", pin, "range", w.serves.ReplayRange.String())
			t.abandon(ctx, time.Second, nil)
			return
		}
	}
	x := w.cache.take(t.item.InstanceID)
	if x != nil && (!t.item.HistoryOmitted || x.HistoryLen() != t.item.HistoryLen || x.Info().ExecutionID != execution) {
		x.Close() // stale: another worker ran a turn since
		x = nil
	}
	if x == nil {
		raw, kv := t.item.History, t.item.KV
		var err error
		if t.item.ReadError != "" {
			err = errors.New(t.item.ReadError)
		} else if t.item.HistoryOmitted { // evicted from the cache meanwhile: read what the fetch left out
			raw, err = w.store.History(ctx, t.item.InstanceID, uint64(execution))
			if err == nil {
				kv, err = w.store.KVCommitted(ctx, t.item.InstanceID)
			}
		}
		if err != nil {
			t.cannotProgress(ctx, execution, fmt.Errorf("reading the history of execution %d: %w", execution, err))
			return
		}
		history, err := replay.DecodeHistory(raw)
		if err != nil {
			t.undecodableHistory(ctx, execution, err)
			return
		}
		if len(history) == 0 {
			t.cannotProgress(ctx, execution, fmt.Errorf("execution %d has no history", execution))
			return
		}
		fn, _, err := w.orchs.Resolve(t.meta.Name, t.meta.Version)
		if err != nil {
			reason := fmt.Sprintf("orchestration %s@%s is not registered on worker %s", t.meta.Name, t.meta.Version, w.opts.NodeID)
			if t.item.Attempts > w.opts.MaxAttempts {
				t.poison(ctx, execution, history, replay.Message{}, reason, engine.KindPoisonOrchestration)
				return
			}
			t.backoffUnregistered(ctx, reason)
			return
		}
		if t.item.Attempts > w.opts.MaxAttempts {
			t.poison(ctx, execution, history, replay.Message{}, "the turn failed on every attempt (worker crash, lock loss or store errors)", engine.KindPoisonOrchestration)
			return
		}
		info := replay.ExecutionInfo{InstanceID: t.item.InstanceID, ExecutionID: execution, Name: t.meta.Name, Version: t.meta.Version}
		x, err = replay.NewExecutor(replay.BindOrchestration(fn), info, history, replay.ExecutorOptions{Logger: w.opts.Logger, KV: kvSnapshot(kv)})
		if err != nil {
			t.undecodableHistory(ctx, execution, err)
			return
		}
	} else if t.item.Attempts > w.opts.MaxAttempts {
		p, pe, pev := x.Parent()
		x.Close()
		t.parent = &parentLink{instance: p, execution: pe, eventID: pev}
		t.poison(ctx, execution, nil, replay.Message{}, "the turn failed on every attempt (worker crash, lock loss or store errors)", engine.KindPoisonOrchestration)
		return
	}
	t.runAndAck(ctx, x, msgs, raws, "")
}

// runAndAck runs the turn and commits it. pin is set on the first turn of an
// execution.
func (t *turn) runAndAck(ctx context.Context, x *replay.Executor, msgs []replay.Message, raws []string, pin string) {
	w := t.w
	info := x.Info()
	traceparent, startedBy := x.Trace(), ""
	if len(msgs) > 0 && msgs[0].IsStart() && pin != "" {
		traceparent, startedBy = msgs[0].Trace, "client"
		switch {
		case msgs[0].Kind == replay.MessageContinueAsNew:
			startedBy = "continue_as_new"
		case msgs[0].ParentInstance != "":
			startedBy = "parent"
		}
	}
	began := time.Now()
	turnCtx, span := w.tel.startTurn(traceparent, t.item.InstanceID, info.Name, info.Version, info.ExecutionID, w.opts.NodeID)
	res, err := x.Turn(w.opts.Clock.Now(), msgs)
	if err != nil {
		span.RecordError(err)
		w.tel.endTurn(turnCtx, span, began, info.Name, info.Version, nil, "")
		x.Close()
		t.abandon(ctx, time.Second, err)
		return
	}
	// Activities and children join the orchestration's trace under this turn.
	if tp := inject(turnCtx); tp != "" {
		for i := range res.Activities {
			res.Activities[i].Trace = tp
		}
		for i := range res.Children {
			res.Children[i].Start.Trace = tp
		}
	}
	for _, d := range res.Dropped {
		t.log.Debug("message dropped by the turn", "reason", d)
	}
	ack := queue.OrchestrationAck{
		ExecutionID: uint64(info.ExecutionID),
		Status:      string(res.Status),
		Name:        info.Name,
		Version:     info.Version,
		EnginePin:   pin,
	}
	enginePin := pin
	if enginePin == "" {
		enginePin = t.meta.EnginePin
	}
	if enginePin == "" {
		enginePin = engine.Version
	}
	switch res.Status {
	case replay.StatusRunning:
		ack.ReadyBucket = capability.ExecutionBucket(info.Name, info.Version, enginePin)
		ack.CacheOwner = w.cacheOwner()
	case replay.StatusCompleted:
		ack.Output = res.Output
	case replay.StatusFailed:
		ack.Output = encodeFailure(res.Failure)
	case replay.StatusContinuedAsNew:
		ack.Output = res.Output
		next, err := replay.EncodeMessage(*res.Next)
		if err != nil {
			x.Close()
			t.abandon(ctx, time.Second, err)
			return
		}
		// Messages after the continue-as-new belong to the next execution:
		// they go back to the head of the inbox, behind its start.
		ack.HeadMessages = append([]string{next}, raws[res.Consumed:]...)
		ack.ReadyBucket = startBucket(res.Next.Name, res.Next.Version)
	}
	for _, e := range res.NewEvents {
		s, err := replay.EncodeEvent(e)
		if err != nil {
			x.Close()
			t.abandon(ctx, time.Second, err)
			return
		}
		ack.NewEvents = append(ack.NewEvents, s)
	}
	if err := t.addTurnEffects(&ack, res); err != nil {
		x.Close()
		t.abandon(ctx, time.Second, err)
		return
	}
	acked := t.ack(ctx, ack, x)
	if acked && len(ack.Timers) > 0 {
		// The idle wait of the fetch loop was computed before this timer
		// existed: fetch again so that it sleeps until the timer is due.
		kick(w.orchKick)
	}
	if acked {
		w.tel.endTurn(turnCtx, span, began, info.Name, info.Version, res, startedBy)
	} else {
		w.tel.endTurn(turnCtx, span, began, info.Name, info.Version, nil, "")
		return
	}
	switch res.Status {
	case replay.StatusCompleted:
		t.log.Debug("orchestration completed", "execution", info.ExecutionID, "version", info.Version)
	case replay.StatusFailed:
		t.log.Warn("orchestration failed", "execution", info.ExecutionID, "version", info.Version, "category", res.Failure.Category, "err", res.Failure.Error())
	case replay.StatusContinuedAsNew:
		t.log.Debug("orchestration continued as new", "execution", info.ExecutionID, "version", info.Version)
	}
}

// addTurnEffects converts what the turn decided, beyond its events, into
// the store's terms: activities, timers, children, cancellations, messages
// to other instances, custom status and key-value changes.
func (t *turn) addTurnEffects(ack *queue.OrchestrationAck, res *replay.TurnResult) error {
	for _, a := range res.Activities {
		body, err := replay.EncodeActivityRequest(a)
		if err != nil {
			return err
		}
		ack.Activities = append(ack.Activities, queue.WorkItem{
			Bucket: activityBucketFor(a.Name, a.Tag), Body: body, Session: a.Session,
			ExecutionID: uint64(a.Execution), EventID: a.EventID,
		})
	}
	for _, tm := range res.Timers {
		body, err := replay.EncodeMessage(tm.Message)
		if err != nil {
			return err
		}
		ack.Timers = append(ack.Timers, queue.Timer{DueAt: tm.FireAt, Body: body})
	}
	for _, c := range res.Children {
		start, err := replay.EncodeMessage(c.Start)
		if err != nil {
			return err
		}
		child := queue.ChildStart{InstanceID: c.InstanceID, Name: c.Name, Version: c.Version,
			Bucket: startBucket(c.Name, c.Version), Message: start}
		if c.Parent {
			child.ParentInstanceID = t.item.InstanceID
		}
		if c.Collision != nil {
			if child.CollisionMessage, err = replay.EncodeMessage(*c.Collision); err != nil {
				return err
			}
		}
		ack.Children = append(ack.Children, child)
	}
	for _, r := range res.CancelActivities {
		ack.CancelActivities = append(ack.CancelActivities, queue.ActivityRef{ExecutionID: uint64(r.Execution), EventID: r.EventID})
	}
	for _, o := range res.Outbox {
		body, err := replay.EncodeMessage(o.Message)
		if err != nil {
			return err
		}
		ack.Outbox = append(ack.Outbox, queue.OutboundMessage{InstanceID: o.InstanceID, Body: body})
	}
	if cs := res.CustomStatus; cs != nil {
		ack.CustomStatus = &queue.CustomStatusUpdate{Value: cs.Value, Clear: cs.Clear}
	}
	for _, op := range res.KV {
		kind := queue.KVSet
		switch op.Kind {
		case replay.KVClear:
			kind = queue.KVClear
		case replay.KVClearAll:
			kind = queue.KVClearAll
		}
		ack.KV = append(ack.KV, queue.KVOp{Op: kind, Key: op.Key, Value: op.Value, UpdatedAt: op.UpdatedAt})
	}
	return nil
}

// ack commits the turn. On success a running executor goes back into the
// sticky cache; otherwise it is closed. It reports success.
func (t *turn) ack(ctx context.Context, ack queue.OrchestrationAck, x *replay.Executor) bool {
	ack.InstanceID = t.item.InstanceID
	ack.Token = t.item.Token
	// A running executor goes into the cache before the ack releases the
	// lock: the next turn may be fetched the moment the lock is gone.
	cached := x != nil && ack.Status == string(replay.StatusRunning) && ack.CacheOwner != ""
	if cached {
		t.w.cache.putIn(t.item.InstanceID, x, ack.ReadyBucket)
	}
	// Eager dispatch: free activity slots are reserved for the activities
	// this worker runs, and the ack claims them (see eagerWorkClaim).
	claim := t.w.eagerWorkClaim(ack)
	// The ack is retried on transient errors until the lock deadline: a
	// resent ack that was already applied is recognised by the store (and
	// returns the work its first run claimed: the claim keeps its request id).
	var claimed []queue.FetchedWork
	// Acks that finish together share a round trip (see ackBatcher).
	err := t.w.retryUntilLockDeadline(t.lock, func(actx context.Context) error {
		res := t.w.acks.send(actx, queue.BatchAck{Orchestration: ack, WorkClaim: claim})
		claimed = res.Orchestration.Work
		return res.Err
	})
	if err != nil {
		claimed = nil
	}
	t.w.actPool.settle(claim.Max, claimed)
	if err != nil {
		if cached {
			t.w.cache.remove(t.item.InstanceID, x)
		}
		if x != nil {
			x.Close()
		}
		if errors.Is(err, queue.ErrLockLost) {
			t.log.Warn("turn discarded: the instance lock was lost (another worker took over)", "err", err)
			return false
		}
		t.log.Error("acknowledging turn failed; the instance will be retried after its lock expires", "err", err)
		return false
	}
	if x != nil && !cached {
		x.Close()
	}
	return true
}

// eagerWorkClaim returns the work claim of ack: up to as many activity
// slots as ack schedules activities this worker runs (no session, a
// bucket it serves) are reserved, Max is how many; 0 when eager dispatch
// is off, the worker runs no activities, no slot is free or ack is a
// dead-letter ack. The caller settles the reservation with
// w.actPool.settle.
func (w *Worker) eagerWorkClaim(ack queue.OrchestrationAck) queue.WorkClaim {
	if w.opts.DisableEagerDispatch || w.actPool == nil || ack.DeadLetter != nil {
		return queue.WorkClaim{}
	}
	var buckets []string
	n := 0
	for _, a := range ack.Activities {
		if a.Session != "" {
			continue
		}
		if !w.servesActivityBucket(a.Bucket) {
			continue
		}
		n++
		if !slices.Contains(buckets, a.Bucket) {
			buckets = append(buckets, a.Bucket)
		}
	}
	n = w.actPool.reserve(n)
	if n == 0 {
		return queue.WorkClaim{}
	}
	return queue.WorkClaim{RequestID: uuid.NewString(), Buckets: buckets, Max: n,
		LockTimeout: w.opts.ActivityLockTimeout, NodeID: w.opts.NodeID}
}

func (t *turn) abandon(ctx context.Context, delay time.Duration, cause error) {
	if cause != nil {
		t.log.Warn("abandoning turn", "err", cause, "retry_in", delay)
	}
	if err := t.w.store.AbandonOrchestration(ctx, t.item.InstanceID, t.item.Token, delay, true); err != nil {
		t.log.Warn("abandoning turn failed; the lock will expire", "err", err)
	}
}

// backoffUnregistered releases work whose orchestration this worker does not
// have, for longer after each attempt, so an upgraded worker can take it.
func (t *turn) backoffUnregistered(ctx context.Context, reason string) {
	delay := t.w.opts.unregisteredDelay(t.item.Attempts)
	t.log.Warn("orchestration not registered here; backing off", "reason", reason, "retry_in", delay,
		"attempt", t.item.Attempts, "max_attempts", t.w.opts.MaxAttempts)
	t.abandon(ctx, delay, nil)
}

// undecodableHistory handles a history this engine cannot decode (written by
// a newer engine, or corrupted): it is never replayed. It is retried with a
// fixed delay and becomes poison after MaxAttempts.
func (t *turn) undecodableHistory(ctx context.Context, execution int64, cause error) {
	if t.item.Attempts > t.w.opts.MaxAttempts {
		t.poison(ctx, execution, nil, replay.Message{}, cause.Error(), engine.KindFailedDeserialization)
		return
	}
	t.log.Warn("history cannot be decoded by this engine; not replaying it", "err", cause, "engine", engine.Version)
	t.abandon(ctx, time.Second, nil)
}

// cannotProgress handles a turn that cannot be run for a reason that may or
// may not pass (its history cannot be read, or is missing): it is retried
// after a second, and every such attempt counts, so that after MaxAttempts
// the instance is poisoned (failed, with a dead letter) instead of being
// retried forever.
func (t *turn) cannotProgress(ctx context.Context, execution int64, cause error) {
	if t.item.Attempts > t.w.opts.MaxAttempts {
		t.poison(ctx, execution, nil, replay.Message{}, cause.Error(), engine.KindPoisonOrchestration)
		return
	}
	t.log.Warn("turn cannot run; retrying", "err", cause, "retry_in", time.Second,
		"attempt", t.item.Attempts, "max_attempts", t.w.opts.MaxAttempts)
	t.abandon(ctx, time.Second, nil)
}

// parentLink is where a sub-orchestration reports how it ended.
type parentLink struct {
	instance           string
	execution, eventID int64
}

// parentOf finds the parent link of the execution being poisoned: from its
// start message, its decoded history, or the first stored event (the start
// usually decodes even when later events do not).
func (t *turn) parentOf(ctx context.Context, history []replay.Event, start replay.Message) parentLink {
	switch {
	case start.IsStart():
		return parentLink{start.ParentInstance, start.ParentExecution, start.ParentEventID}
	case t.parent != nil:
		return *t.parent
	case len(history) > 0:
		return parentLink{history[0].ParentInstance, history[0].ParentExecution, history[0].ParentEventID}
	}
	if t.meta.ParentInstanceID == "" {
		return parentLink{}
	}
	raw := t.item.History
	if len(raw) == 0 {
		raw, _ = t.w.store.History(ctx, t.item.InstanceID, t.meta.ExecutionID)
	}
	if len(raw) > 0 {
		if e, err := replay.DecodeEvent(raw[0]); err == nil && e.Kind == replay.EventOrchestrationStarted {
			return parentLink{e.ParentInstance, e.ParentExecution, e.ParentEventID}
		}
	}
	t.log.Error("cannot tell the parent of a poisoned sub-orchestration how it ended: its start event is unreadable", "parent", t.meta.ParentInstanceID)
	return parentLink{}
}

// poison ends the execution as failed with poison details. history is the
// decoded history when known; for a new execution start is its start message.
func (t *turn) poison(ctx context.Context, execution int64, history []replay.Event, start replay.Message, reason, kind string) {
	w := t.w
	now := w.opts.Clock.Now().UnixMilli()
	details := &replay.Failure{
		Category: engine.CategoryPoison, Kind: kind, Message: reason,
		Attempts: t.item.Attempts, MaxAttempts: w.opts.MaxAttempts,
		Instance: t.item.InstanceID, Execution: execution,
	}
	var events []replay.Event
	next := int64(t.item.HistoryLen) + 1
	if history != nil {
		next = int64(len(history)) + 1
	}
	name, version := t.meta.Name, t.meta.Version
	if start.IsStart() {
		name, version = start.Name, start.Version
		events = append(events, replay.Event{ID: 1, Kind: replay.EventOrchestrationStarted, Time: now, Engine: engine.Version,
			Name: start.Name, Version: start.Version, Input: start.Input,
			ParentInstance: start.ParentInstance, ParentExecution: start.ParentExecution, ParentEventID: start.ParentEventID})
		next = 2
	}
	events = append(events, replay.Event{ID: next, Kind: replay.EventOrchestrationFailed, Time: now, Engine: engine.Version, Error: details})
	ack := queue.OrchestrationAck{
		ExecutionID: uint64(execution), Status: string(replay.StatusFailed),
		Name: name, Version: version, Output: encodeFailure(details),
		DeadLetter: &queue.DeadLetterNote{Reason: details.Error(), Attempts: t.item.Attempts, MaxAttempts: w.opts.MaxAttempts},
	}
	if start.IsStart() {
		ack.EnginePin = engine.Version
	}
	for _, e := range events {
		s, err := replay.EncodeEvent(e)
		if err != nil {
			t.abandon(ctx, time.Second, err)
			return
		}
		ack.NewEvents = append(ack.NewEvents, s)
	}
	if p := t.parentOf(ctx, history, start); p.instance != "" {
		body, err := replay.EncodeMessage(replay.Message{Kind: replay.MessageSubOrchestrationFailed,
			Execution: p.execution, EventID: p.eventID, Error: details})
		if err == nil {
			ack.Outbox = append(ack.Outbox, queue.OutboundMessage{InstanceID: p.instance, Body: body})
		}
	}
	if t.ack(ctx, ack, nil) {
		t.log.Error("orchestration poisoned", "execution", execution, "reason", details.Error())
		w.tel.add(ctx, w.tel.poison, 1, "kind", "orchestration")
		w.tel.add(ctx, w.tel.failures, 1, "orchestration", name, "category", string(engine.CategoryPoison))
	}
}

// renewTurnLock keeps the instance lock of a turn that runs longer than a
// third of the lock timeout. It returns a function that stops it.
func (w *Worker) renewTurnLock(ctx context.Context, item queue.OrchestrationItem, deadline *lockDeadline) func() {
	return renewLock(ctx, w.opts.OrchestrationLockTimeout, deadline,
		func(ctx context.Context) error {
			return w.store.RenewOrchestrationLock(ctx, item.InstanceID, item.Token, w.opts.OrchestrationLockTimeout)
		},
		func(err error) bool {
			w.log.Warn("renewing turn lock failed", "instance", item.InstanceID, "err", err)
			return errors.Is(err, queue.ErrLockLost)
		})
}

func kvSnapshot(kv map[string]queue.KVEntry) map[string]replay.KVEntry {
	out := make(map[string]replay.KVEntry, len(kv))
	for k, e := range kv {
		out[k] = replay.KVEntry{Value: e.Value, UpdatedAt: e.UpdatedAt}
	}
	return out
}

func startBucket(name, version string) string {
	if version == "" {
		return capability.StartBucket(name)
	}
	return capability.StartVersionBucket(name, version)
}

func describeVersion(name, version string) string {
	if version == "" {
		return name + " (any version)"
	}
	return name + "@" + version
}

// encodeFailure is how a failed instance's ErrorDetails are stored as its
// output (the client decodes them for Status).
func encodeFailure(d *replay.Failure) string {
	b, err := json.Marshal(d)
	if err != nil {
		return fmt.Sprintf(`{"category":"infrastructure","kind":"store","message":%q}`, d.Error())
	}
	return string(b)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
