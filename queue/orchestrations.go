package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// TurnLead is how far ahead of new starts the next turn of a running
// instance is served. When an instance that has already run a turn (status
// Running) becomes fetchable (a message is delivered to it, a turn ends with
// messages waiting, its lock is reclaimed or given back without delay), its
// ready-bucket entry is scored TurnLead before now; a new start is scored
// now. Fetches take the lowest scores first: under a backlog of starts, a
// running instance's turn goes before every start younger than TurnLead,
// and a start that has waited longer goes first, so starts are never
// starved: a start waits at most TurnLead for running work. A minute
// covers a backlog that takes that long to drain (a shorter lead only
// helps a backlog younger than the lead: bench/RESULTS.md). Delays and
// lock deadlines keep their scores. The value is TURN_LEAD_MS in
// lua/common.lua.
const TurnLead = 60 * time.Second

// FetchOrchestrationsRequest asks for instances to run.
type FetchOrchestrationsRequest struct {
	// RequestID names this call and must be unique per call. Running the same
	// request again while its locks last (go-redis resends a script whose
	// reply was lost) returns the items the first run locked, rebuilt,
	// instead of locking more. If empty, a random id is used.
	RequestID string
	// Buckets are the ready buckets this worker serves. Duplicates and empty
	// names are ignored; with none, only timers are promoted.
	Buckets []string
	// Max is the largest number of instances to lock; it must be at least 1.
	Max int
	// MaxMessages caps the inbox messages of one instance batch. If zero,
	// 1000 is used.
	MaxMessages int
	// LockTimeout is how long the locks last unless renewed; it must be positive.
	LockTimeout time.Duration
	// CacheOwner identifies the caller's in-memory replay cache. When an
	// instance's history is held by this owner, it is not sent again.
	CacheOwner string
	// PromoteTimers caps the due timers moved to inboxes by this call. If
	// zero, 256 are promoted at most; a negative value promotes none.
	PromoteTimers int
	// NodeID is the worker node that takes the locks (see AdvertiseNode).
	// When set, the locks are recorded under it and reclaimed as soon as the
	// node's liveness lapses, instead of at their deadline. If empty, the
	// locks only expire at their deadline.
	NodeID string
}

// OrchestrationItem is one locked instance with its batch.
type OrchestrationItem struct {
	InstanceID string
	// Token is the lock token to pass to AckOrchestration,
	// AbandonOrchestration and RenewOrchestrationLock.
	Token string
	// Attempts is the delivery count of this batch after this fetch (1 on
	// first delivery).
	Attempts int
	// Instance is the instance record after locking.
	Instance InstanceRecord
	// Messages is the inbox batch, oldest first.
	Messages []string
	// History is the current execution's history, nil when HistoryOmitted.
	History []string
	// HistoryLen is the length of the current execution's history.
	HistoryLen int
	// HistoryOmitted is true when the instance's history is held by the
	// request's CacheOwner, so History was not sent.
	HistoryOmitted bool
	// KV is the instance's committed key-value state as of the start of the
	// current execution (kv:<id>), sent with the history: nil when
	// HistoryOmitted, non-nil otherwise. Writes of the running execution
	// are not in it; they are in its history, to be applied on top.
	KV map[string]KVEntry
	// ReadError is not empty when the instance's history or key-value state
	// could not be read (a key of the wrong type): History and KV are then
	// empty although the instance is locked and its attempt counted.
	ReadError string
}

// FetchOrchestrationsResult is the outcome of FetchOrchestrations.
type FetchOrchestrationsResult struct {
	Items []OrchestrationItem
	// NextWake is the time until the earliest entry left in the served
	// buckets or the timers (a future enqueue time, a delayed abandon, a lock
	// deadline or a timer due time), at least 1 ms when such an entry is
	// already due; 0 when there is none. A caller that got Max items should
	// fetch again at once: NextWake is then 1 ms, not computed.
	NextWake time.Duration
}

// FetchOrchestrations promotes up to PromoteTimers due timers, then locks up
// to Max fetchable instances of the served buckets, oldest first, and returns
// their batches. An instance is fetchable when its score is due: it has
// messages and no lock, or its lock has expired (then the fetch takes it over
// with a new token and Attempts+1). Its cost does not depend on the content
// of buckets it does not serve.
func (s *Store) FetchOrchestrations(ctx context.Context, req FetchOrchestrationsRequest) (FetchOrchestrationsResult, error) {
	maxMsgs := req.MaxMessages
	if maxMsgs <= 0 {
		maxMsgs = defaultMaxMessages
	}
	promote := req.PromoteTimers
	switch {
	case promote == 0:
		promote = defaultPromoteTimers
	case promote < 0:
		promote = 0
	}
	k := s.keys
	items, wake, err := runFetch(ctx, s, fetchCall{
		what: "fetching orchestrations", script: s.fetchOrch,
		requestID: req.RequestID, max: req.Max, lock: req.LockTimeout,
		buckets: req.Buckets, bucketKey: k.ReadyKey,
		keys: func(id string) []string { return []string{k.Prefix(), k.timersKey(), k.fetchOrchRequestKey(id)} },
		args: func(id string) []any {
			return []any{id, req.Max, maxMsgs, millis(req.LockTimeout), req.CacheOwner, promote, req.NodeID}
		},
	}, decodeOrchItem)
	return FetchOrchestrationsResult{Items: items, NextWake: wake}, err
}

// orchItemFields are the inst fields a fetch_orch.lua item carries (also
// an eager turn of ack_work.lua: orch_item in common.lua), in
// the order of its ITEM_FIELDS (which may list more, read by the script).
var orchItemFields = []string{"name", "ver", "status", "pin", "parent", "out", "rq", "tok",
	"cstatus", "cset", "exec", "att", "csver", "ctime", "utime"}

// decodeOrchItem decodes one item of a fetch_orch.lua reply.
func decodeOrchItem(v any) (OrchestrationItem, error) {
	var it OrchestrationItem
	f, err := replyArray(v, 10)
	if err != nil {
		return it, err
	}
	if it.InstanceID, err = replyString(f[0]); err != nil {
		return it, err
	}
	if it.Token, err = replyString(f[1]); err != nil {
		return it, err
	}
	att, err := replyInt(f[2])
	if err != nil {
		return it, err
	}
	it.Attempts = int(att)
	vals, err := replyStrings(f[3])
	if err != nil {
		return it, err
	}
	if len(vals) < len(orchItemFields) {
		return it, fmt.Errorf("fetch item of %s: %d instance fields, want %d", it.InstanceID, len(vals), len(orchItemFields))
	}
	h := make(map[string]string, len(orchItemFields))
	for i, name := range orchItemFields {
		h[name] = vals[i]
	}
	if it.Instance, err = decodeInstance(it.InstanceID, h); err != nil {
		return it, err
	}
	if it.Messages, err = replyStrings(f[4]); err != nil {
		return it, err
	}
	hlen, err := replyInt(f[5])
	if err != nil {
		return it, err
	}
	it.HistoryLen = int(hlen)
	omitted, err := replyInt(f[6])
	if err != nil {
		return it, err
	}
	it.HistoryOmitted = omitted == 1
	if it.ReadError, err = replyString(f[9]); err != nil {
		return it, err
	}
	if !it.HistoryOmitted {
		if it.History, err = replyStrings(f[7]); err != nil {
			return it, err
		}
		flat, err := flatToMap(f[8])
		if err != nil {
			return it, err
		}
		if it.KV, err = decodeKVStore(flat); err != nil {
			return it, fmt.Errorf("instance %s: %w", it.InstanceID, err)
		}
	}
	return it, nil
}

// WorkItem is a new work item (an activity) created by an ack.
type WorkItem struct {
	// Bucket is the work bucket, e.g. "a:SendEmail". Required.
	Bucket string
	Body   string
	// Session, when not empty, pins the item to the worker that owns the
	// session: if the session has a live owner the item goes straight to the
	// owner's node bucket ("s:<owner>"); otherwise it waits in Bucket and the
	// first worker to fetch it claims the session (see FetchWork).
	Session string
	// ExecutionID and EventID name the item for OrchestrationAck.CancelActivities.
	// The reference is recorded only when ExecutionID is not zero; an item
	// without one cannot be cancelled. A later item with the same reference
	// replaces the earlier one in the map.
	ExecutionID uint64
	EventID     int64
}

// ActivityRef names a work item scheduled by the acking instance with
// WorkItem.ExecutionID and WorkItem.EventID.
type ActivityRef struct {
	ExecutionID uint64
	EventID     int64
}

func (r ActivityRef) String() string {
	return strconv.FormatUint(r.ExecutionID, 10) + ":" + strconv.FormatInt(r.EventID, 10)
}

// ChildStart creates another instance (a sub-orchestration, or a detached
// orchestration when ParentInstanceID is empty) in the same atomic ack.
type ChildStart struct {
	// InstanceID, Name, Bucket and Message are required; Bucket must not
	// contain '{' or '}'. The instance is created like CreateInstance does.
	InstanceID, Name, Version string
	// ParentInstanceID, when not empty, is stored as the child's parent and
	// the child is added to the set childrenKey(ParentInstanceID).
	ParentInstanceID string
	Bucket, Message  string
	// CollisionMessage, when not empty, is delivered to the acking
	// instance's own inbox if InstanceID already exists (whatever its
	// status; the existing instance is left untouched), so that its next
	// turn learns of the collision. It is dropped when the ack ends the
	// acking instance (Completed or Failed). When empty, a collision is
	// silently ignored.
	CollisionMessage string
}

// CustomStatusUpdate sets or clears an instance's custom status.
type CustomStatusUpdate struct {
	// Value is the new custom status; it must be empty when Clear is set.
	Value string
	// Clear removes the custom status (InstanceRecord.CustomStatusSet
	// becomes false).
	Clear bool
}

// Timer is a message delivered to the acking instance's inbox at DueAt
// (millisecond precision). Due timers are moved by FetchOrchestrations.
type Timer struct {
	DueAt time.Time
	Body  string
}

// OutboundMessage is a message to another instance, delivered like Enqueue
// but silently dropped if the target is missing or ended.
type OutboundMessage struct {
	InstanceID string
	Body       string
}

// OrchestrationAck commits one orchestration turn.
type OrchestrationAck struct {
	InstanceID string
	Token      string
	// ExecutionID is the execution the new events belong to (>= 1). When it
	// is greater than the instance's current execution, this ack starts a new
	// execution: the pin is reset to EnginePin and the version to Version.
	// It must not be lower than the current execution.
	ExecutionID uint64
	// NewEvents are appended to the history of ExecutionID.
	NewEvents []string
	// Status is Running, Completed, Failed or ContinuedAsNew. The instance
	// becomes Running for Running and ContinuedAsNew.
	Status string
	Output string
	// Name and Version are the orchestration name and version of
	// ExecutionID; empty values leave the stored ones unchanged, except that
	// a new execution always stores Version.
	Name, Version string
	// EnginePin, when non-empty, is stored as the pin and added to the set
	// returned by EnginePins.
	EnginePin string
	// ReadyBucket is where the instance waits for its next messages; empty
	// keeps the current bucket.
	ReadyBucket string
	// HeadMessages are put at the head of the instance's own inbox, in
	// order, after the consumed batch is removed (e.g. a continue-as-new
	// start message). Ignored for Completed and Failed.
	HeadMessages []string
	Activities   []WorkItem
	Timers       []Timer
	Outbox       []OutboundMessage
	// CacheOwner is who holds this instance's history in memory after this
	// ack; empty clears it.
	CacheOwner string
	// Children are instances created by this ack, after its work items and
	// before its Outbox (so a message to a child started in this turn is
	// delivered after the child's start message).
	Children []ChildStart
	// CancelActivities deletes in-flight work items this instance scheduled
	// ("lock stealing"), after this ack's own Activities are created: the
	// item leaves its bucket, and a worker holding it gets ErrWorkNotFound
	// from RenewWork and AckWork. A reference that is not there (already
	// completed, or never recorded) is skipped.
	CancelActivities []ActivityRef
	// CustomStatus, when not nil, sets or clears the custom status; every
	// update adds 1 to InstanceRecord.CustomStatusVersion.
	CustomStatus *CustomStatusUpdate
	// DeadLetter, when not nil, copies the poisoned batch (the whole inbox)
	// and the instance's state before this ack to the dead-letter stream,
	// atomically with the ack, so that it can be inspected and requeued.
	DeadLetter *DeadLetterNote
	// KV are key-value operations, applied in order to the delta of the
	// current execution (see KVOp). When Status ends the execution
	// (Completed, Failed or ContinuedAsNew) the delta is then merged into
	// the committed state.
	KV []KVOp
}

// validStatus reports whether s is a valid OrchestrationAck.Status.
func validStatus(s string) bool {
	switch s {
	case StatusRunning, StatusCompleted, StatusFailed, StatusContinuedAsNew:
		return true
	}
	return false
}

// AckOrchestration commits a turn atomically: it removes the consumed batch
// from the inbox, appends NewEvents, updates the instance, releases the lock
// and writes the activities, timers and outbound messages. For Completed and
// Failed it drops the inbox, takes the instance out of its bucket and
// publishes the id on the ended channel; otherwise, if messages are waiting
// (they arrived during the turn or are HeadMessages), the instance is
// readied in ReadyBucket at once.
//
// The same script creates Children, cancels CancelActivities, updates the
// custom status and applies the KV operations (merging the key-value delta
// when the execution ends); see the field docs for the order.
//
// It returns ErrLockLost when Token is not the current lock. Retrying an ack
// that already succeeded with the same token returns nil and changes nothing.
// An ack whose lock expired but was not taken by another fetch succeeds. An
// ack with more than MaxAckEntries entries in one of its lists fails with
// ErrAckTooLarge before anything is sent.
func (s *Store) AckOrchestration(ctx context.Context, ack OrchestrationAck) error {
	_, err := s.ackOrchestration(ctx, ack, nil)
	return err
}

// WorkClaim asks an ack to lock, for its caller, work items that the ack
// creates (eager dispatch): the caller then runs them without fetching
// them. The locks are those FetchWork takes.
type WorkClaim struct {
	// RequestID names the claim like FetchWorkRequest.RequestID: a resent
	// ack with the same RequestID (after a lost reply) returns the items
	// the first run claimed instead of claiming more. Retries of one ack
	// must reuse it. If empty, a random id is used.
	RequestID string
	// Buckets are the work buckets the caller serves; only items of these
	// buckets are claimed.
	Buckets []string
	// Max is the number of free activity slots the caller has reserved for
	// the claim; 0 claims nothing (the ack is then a plain
	// AckOrchestration).
	Max int
	// LockTimeout is how long the locks last unless renewed; it must be
	// positive when Max > 0.
	LockTimeout time.Duration
	// NodeID is the worker node that takes the locks; see
	// FetchOrchestrationsRequest.NodeID.
	NodeID string
}

// AckOrchestrationResult is the outcome of AckOrchestrationClaim.
type AckOrchestrationResult struct {
	// Applied is false when the token had already been acked (a resent
	// ack): nothing changed.
	Applied bool
	// Work are the claimed work items, locked for the caller exactly as
	// FetchWork returns them (Attempts counts this delivery).
	Work []FetchedWork
}

// AckOrchestrationClaim is AckOrchestration that also claims, when
// claim.Max > 0, up to claim.Max of the work items the ack creates in
// claim.Buckets (in the order of ack.Activities; items of a session are
// never claimed: they go through FetchWork, which applies the session
// rules), atomically with the ack. The claimed items leave no wake-up
// behind. A dead-letter ack claims nothing. A resent ack that was already
// applied returns the items its first run claimed (same RequestID) that
// are still locked by it, with Applied false. A claimed item that its
// caller never acks is redelivered by FetchWork after its lock expires,
// like a fetched one.
func (s *Store) AckOrchestrationClaim(ctx context.Context, ack OrchestrationAck, claim WorkClaim) (AckOrchestrationResult, error) {
	c, err := s.prepareOrchAck(ack, claim)
	if err != nil {
		return AckOrchestrationResult{}, err
	}
	r := c.run(ctx, s)
	return r.Orchestration, r.Err
}

// decodeClaimReply decodes {n, item...} of an ack with a claim.
func decodeClaimReply[T any](raw any, decodeItem func(any) (T, error)) ([]T, int64, error) {
	arr, ok := raw.([]any)
	if !ok || len(arr) == 0 {
		return nil, 0, fmt.Errorf("unexpected reply %T", raw)
	}
	n, err := replyInt(arr[0])
	if err != nil {
		return nil, 0, err
	}
	var items []T
	for _, v := range arr[1:] {
		it, err := decodeItem(v)
		if err != nil {
			return nil, 0, err
		}
		items = append(items, it)
	}
	return items, n, nil
}

// ackOrchestration runs ack_orch.lua, with a work claim when claim is not
// nil, and returns its raw reply.
func (s *Store) ackOrchestration(ctx context.Context, ack OrchestrationAck, claim *WorkClaim) (any, error) {
	keys, args, err := s.ackOrchArgs(ack, claim)
	if err != nil {
		return nil, err
	}
	raw, err := s.ackOrch.Run(ctx, s.rdb, keys, args...).Result()
	if err != nil {
		return nil, fmt.Errorf("acking orchestration %s: %w", ack.InstanceID, mapScriptError(err))
	}
	return raw, nil
}

// ackOrchArgs validates ack and returns the KEYS and ARGV of its
// ack_orch.lua call, with a work claim when claim is not nil.
func (s *Store) ackOrchArgs(ack OrchestrationAck, claim *WorkClaim) ([]string, []any, error) {
	if ack.InstanceID == "" || ack.Token == "" {
		return nil, nil, fmt.Errorf("acking orchestration %q: instance id and token are required", ack.InstanceID)
	}
	if ack.ExecutionID == 0 {
		return nil, nil, fmt.Errorf("acking orchestration %s: execution id must be at least 1", ack.InstanceID)
	}
	if !validStatus(ack.Status) {
		return nil, nil, fmt.Errorf("acking orchestration %s: invalid status %q", ack.InstanceID, ack.Status)
	}
	if err := validateAck(ack); err != nil {
		return nil, nil, fmt.Errorf("acking orchestration %s: %w", ack.InstanceID, err)
	}
	kvArgs, err := encodeKVOps(ack.KV)
	if err != nil {
		return nil, nil, fmt.Errorf("acking orchestration %s: %w", ack.InstanceID, err)
	}
	k := s.keys
	keys := []string{
		k.Prefix(), k.InstanceKey(ack.InstanceID), k.InboxKey(ack.InstanceID),
		k.HistoryKey(ack.InstanceID, ack.ExecutionID), k.timersKey(), k.seqKey(), k.EnginesKey(),
		k.WorkMapKey(ack.InstanceID), k.kvKey(ack.InstanceID), k.kvDeltaKey(ack.InstanceID),
		k.executionsKey(ack.InstanceID),
	}
	csOp, csValue := "", ""
	if cs := ack.CustomStatus; cs != nil {
		csOp, csValue = "set", cs.Value
		if cs.Clear {
			csOp = "clear"
		}
	}
	n := 20 + len(ack.NewEvents) + len(ack.HeadMessages) + 4*len(ack.Activities) +
		2*(len(ack.Timers)+len(ack.Outbox)) + 7*len(ack.Children) + len(ack.CancelActivities) + len(kvArgs)
	args := make([]any, 0, n)
	args = append(args,
		ack.InstanceID, ack.Token, strconv.FormatUint(ack.ExecutionID, 10), ack.Status, ack.Output,
		ack.Name, ack.Version, ack.EnginePin, ack.ReadyBucket, ack.CacheOwner,
		len(ack.NewEvents), len(ack.HeadMessages), len(ack.Activities), len(ack.Timers), len(ack.Outbox),
		len(ack.Children), len(ack.CancelActivities), len(ack.KV), csOp, csValue)
	for _, e := range ack.NewEvents {
		args = append(args, e)
	}
	for _, m := range ack.HeadMessages {
		args = append(args, m)
	}
	for _, w := range ack.Activities {
		ref := ""
		if w.ExecutionID != 0 {
			ref = ActivityRef{ExecutionID: w.ExecutionID, EventID: w.EventID}.String()
		}
		args = append(args, w.Bucket, w.Body, ref, w.Session)
	}
	for _, t := range ack.Timers {
		args = append(args, t.DueAt.UnixMilli(), t.Body)
	}
	for _, m := range ack.Outbox {
		args = append(args, m.InstanceID, m.Body)
	}
	for _, c := range ack.Children {
		args = append(args, c.InstanceID, c.Name, c.Version, c.ParentInstanceID, c.Bucket, c.Message, c.CollisionMessage)
	}
	for _, r := range ack.CancelActivities {
		args = append(args, r.String())
	}
	args = append(args, kvArgs...)
	if dl := ack.DeadLetter; dl != nil {
		args = append(args, "1", dl.Reason, dl.Attempts, dl.MaxAttempts)
	} else {
		args = append(args, "")
	}
	if claim != nil {
		keys = append(keys, k.fetchWorkRequestKey(claim.RequestID))
		args = append(args, claim.RequestID, claim.Max, millis(claim.LockTimeout), claim.NodeID)
		for _, b := range dedupe(claim.Buckets) {
			args = append(args, b)
		}
	}
	return keys, args, nil
}

// validateAck checks the parts of an ack that the script trusts.
func validateAck(ack OrchestrationAck) error {
	lists := []struct {
		name string
		n    int
	}{
		{"NewEvents", len(ack.NewEvents)}, {"HeadMessages", len(ack.HeadMessages)},
		{"Activities", len(ack.Activities)}, {"Timers", len(ack.Timers)}, {"Outbox", len(ack.Outbox)},
		{"Children", len(ack.Children)}, {"CancelActivities", len(ack.CancelActivities)}, {"KV", len(ack.KV)},
	}
	for _, l := range lists {
		if l.n > MaxAckEntries {
			return fmt.Errorf("%w: %s has %d entries, the limit is %d", ErrAckTooLarge, l.name, l.n, MaxAckEntries)
		}
	}
	for _, w := range ack.Activities {
		if w.Bucket == "" {
			return errors.New("work item without bucket")
		}
	}
	for _, m := range ack.Outbox {
		if m.InstanceID == "" {
			return errors.New("outbound message without instance id")
		}
	}
	for i, c := range ack.Children {
		if c.InstanceID == "" || c.Name == "" || c.Bucket == "" || c.Message == "" {
			return fmt.Errorf("child %d (%q): instance id, name, bucket and message are required", i, c.InstanceID)
		}
		if strings.ContainsAny(c.Bucket, "{}") {
			return fmt.Errorf("child %s: bucket %q must not contain '{' or '}'", c.InstanceID, c.Bucket)
		}
	}
	for _, r := range ack.CancelActivities {
		if r.ExecutionID == 0 {
			return fmt.Errorf("cancelled activity %s: execution id must be at least 1", r)
		}
	}
	if cs := ack.CustomStatus; cs != nil && cs.Clear && cs.Value != "" {
		return errors.New("custom status: Clear with a non-empty Value")
	}
	return nil
}

// AbandonOrchestration releases a lock without committing: the inbox is
// untouched and the instance becomes fetchable again after delay. With
// keepAttempt false the fetch is not counted (Attempts-1, minimum 0). It
// returns ErrLockLost when token is not the current lock; that includes a
// retry of an abandon that already succeeded.
func (s *Store) AbandonOrchestration(ctx context.Context, instanceID, token string, delay time.Duration, keepAttempt bool) error {
	k := s.keys
	keep := "0"
	if keepAttempt {
		keep = "1"
	}
	err := s.abandonOrch.Run(ctx, s.rdb, []string{k.Prefix(), k.InstanceKey(instanceID), k.InboxKey(instanceID)},
		instanceID, token, millis(delay), keep).Err()
	if err != nil {
		return fmt.Errorf("abandoning orchestration %s: %w", instanceID, mapScriptError(err))
	}
	return nil
}

// RenewOrchestrationLock moves the lock deadline to now+lockTimeout (Redis
// clock). It never changes Attempts. It returns ErrLockLost when token is not
// the current lock or the lock has already expired.
func (s *Store) RenewOrchestrationLock(ctx context.Context, instanceID, token string, lockTimeout time.Duration) error {
	if lockTimeout <= 0 {
		return fmt.Errorf("renewing lock of %s: lock timeout must be positive, got %v", instanceID, lockTimeout)
	}
	k := s.keys
	err := s.renewOrch.Run(ctx, s.rdb, []string{k.Prefix(), k.InstanceKey(instanceID)},
		instanceID, token, millis(lockTimeout)).Err()
	if err != nil {
		return fmt.Errorf("renewing lock of %s: %w", instanceID, mapScriptError(err))
	}
	return nil
}
