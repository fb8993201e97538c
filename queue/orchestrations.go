package queue

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

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
	// DefaultMaxMessages is used.
	MaxMessages int
	// LockTimeout is how long the locks last unless renewed; it must be positive.
	LockTimeout time.Duration
	// CacheOwner identifies the caller's in-memory replay cache. When an
	// instance's history is held by this owner, it is not sent again.
	CacheOwner string
	// PromoteTimers caps the due timers moved to inboxes by this call. If
	// zero, DefaultPromoteTimers is used; a negative value promotes none.
	PromoteTimers int
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
}

// FetchOrchestrationsResult is the outcome of FetchOrchestrations.
type FetchOrchestrationsResult struct {
	Items []OrchestrationItem
	// NextWake is the time until the earliest entry left in the served
	// buckets or the timers (a future enqueue time, a delayed abandon, a lock
	// deadline or a timer due time), at least 1 ms when such an entry is
	// already due; 0 when there is none. A caller that got Max items should
	// fetch again at once.
	NextWake time.Duration
}

// FetchOrchestrations promotes up to PromoteTimers due timers, then locks up
// to Max fetchable instances of the served buckets, oldest first, and returns
// their batches. An instance is fetchable when its score is due: it has
// messages and no lock, or its lock has expired (then the fetch takes it over
// with a new token and Attempts+1). Its cost does not depend on the content
// of buckets it does not serve.
func (s *Store) FetchOrchestrations(ctx context.Context, req FetchOrchestrationsRequest) (FetchOrchestrationsResult, error) {
	if req.Max < 1 {
		return FetchOrchestrationsResult{}, fmt.Errorf("fetching orchestrations: Max must be at least 1, got %d", req.Max)
	}
	if req.LockTimeout <= 0 {
		return FetchOrchestrationsResult{}, fmt.Errorf("fetching orchestrations: LockTimeout must be positive, got %v", req.LockTimeout)
	}
	if req.RequestID == "" {
		req.RequestID = newRequestID()
	}
	maxMsgs := req.MaxMessages
	if maxMsgs <= 0 {
		maxMsgs = DefaultMaxMessages
	}
	promote := req.PromoteTimers
	switch {
	case promote == 0:
		promote = DefaultPromoteTimers
	case promote < 0:
		promote = 0
	}
	buckets := dedupe(req.Buckets)
	k := s.keys
	keys := make([]string, 0, 3+len(buckets))
	keys = append(keys, k.Prefix(), k.TimersKey(), k.FetchOrchRequestKey(req.RequestID))
	args := make([]any, 0, 6+len(buckets))
	args = append(args, req.RequestID, req.Max, maxMsgs, millis(req.LockTimeout), req.CacheOwner, promote)
	for _, b := range buckets {
		keys = append(keys, k.ReadyKey(b))
		args = append(args, b)
	}
	raw, err := s.fetchOrch.Run(ctx, s.rdb, keys, args...).Slice()
	if err != nil {
		return FetchOrchestrationsResult{}, fmt.Errorf("fetching orchestrations: %w", mapScriptError(err))
	}
	res, err := decodeFetchOrch(raw)
	if err != nil {
		return FetchOrchestrationsResult{}, fmt.Errorf("fetching orchestrations: decoding reply: %w", err)
	}
	return res, nil
}

func decodeFetchOrch(raw []any) (FetchOrchestrationsResult, error) {
	var res FetchOrchestrationsResult
	if len(raw) == 0 {
		return res, fmt.Errorf("empty reply")
	}
	wake, err := replyInt(raw[0])
	if err != nil {
		return res, err
	}
	res.NextWake = time.Duration(wake) * time.Millisecond
	for _, v := range raw[1:] {
		f, err := replyArray(v, 8)
		if err != nil {
			return res, err
		}
		var it OrchestrationItem
		if it.InstanceID, err = replyString(f[0]); err != nil {
			return res, err
		}
		if it.Token, err = replyString(f[1]); err != nil {
			return res, err
		}
		att, err := replyInt(f[2])
		if err != nil {
			return res, err
		}
		it.Attempts = int(att)
		h, err := flatToMap(f[3])
		if err != nil {
			return res, err
		}
		if it.Instance, err = decodeInstance(it.InstanceID, h); err != nil {
			return res, err
		}
		if it.Messages, err = replyStrings(f[4]); err != nil {
			return res, err
		}
		hlen, err := replyInt(f[5])
		if err != nil {
			return res, err
		}
		it.HistoryLen = int(hlen)
		omitted, err := replyInt(f[6])
		if err != nil {
			return res, err
		}
		it.HistoryOmitted = omitted == 1
		if !it.HistoryOmitted {
			if it.History, err = replyStrings(f[7]); err != nil {
				return res, err
			}
		}
		res.Items = append(res.Items, it)
	}
	return res, nil
}

// WorkItem is a new work item (an activity) created by an ack.
type WorkItem struct {
	// Bucket is the work bucket, e.g. "a:SendEmail". Required.
	Bucket string
	Body   string
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
// It returns ErrLockLost when Token is not the current lock. Retrying an ack
// that already succeeded with the same token returns nil and changes nothing.
// An ack whose lock expired but was not taken by another fetch succeeds.
func (s *Store) AckOrchestration(ctx context.Context, ack OrchestrationAck) error {
	if ack.InstanceID == "" || ack.Token == "" {
		return fmt.Errorf("acking orchestration %q: instance id and token are required", ack.InstanceID)
	}
	if ack.ExecutionID == 0 {
		return fmt.Errorf("acking orchestration %s: execution id must be at least 1", ack.InstanceID)
	}
	if !validStatus(ack.Status) {
		return fmt.Errorf("acking orchestration %s: invalid status %q", ack.InstanceID, ack.Status)
	}
	for _, w := range ack.Activities {
		if w.Bucket == "" {
			return fmt.Errorf("acking orchestration %s: work item without bucket", ack.InstanceID)
		}
	}
	for _, m := range ack.Outbox {
		if m.InstanceID == "" {
			return fmt.Errorf("acking orchestration %s: outbound message without instance id", ack.InstanceID)
		}
	}
	k := s.keys
	keys := []string{
		k.Prefix(), k.InstanceKey(ack.InstanceID), k.InboxKey(ack.InstanceID),
		k.HistoryKey(ack.InstanceID, ack.ExecutionID), k.TimersKey(), k.SeqKey(), k.EnginesKey(),
	}
	n := 15 + len(ack.NewEvents) + len(ack.HeadMessages) + 2*(len(ack.Activities)+len(ack.Timers)+len(ack.Outbox))
	args := make([]any, 0, n)
	args = append(args,
		ack.InstanceID, ack.Token, strconv.FormatUint(ack.ExecutionID, 10), ack.Status, ack.Output,
		ack.Name, ack.Version, ack.EnginePin, ack.ReadyBucket, ack.CacheOwner,
		len(ack.NewEvents), len(ack.HeadMessages), len(ack.Activities), len(ack.Timers), len(ack.Outbox))
	for _, e := range ack.NewEvents {
		args = append(args, e)
	}
	for _, m := range ack.HeadMessages {
		args = append(args, m)
	}
	for _, w := range ack.Activities {
		args = append(args, w.Bucket, w.Body)
	}
	for _, t := range ack.Timers {
		args = append(args, t.DueAt.UnixMilli(), t.Body)
	}
	for _, m := range ack.Outbox {
		args = append(args, m.InstanceID, m.Body)
	}
	if err := s.ackOrch.Run(ctx, s.rdb, keys, args...).Err(); err != nil {
		return fmt.Errorf("acking orchestration %s: %w", ack.InstanceID, mapScriptError(err))
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
