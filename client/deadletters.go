package client

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/duroworker/duroworker/capability"
	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/internal/replay"
	"github.com/duroworker/duroworker/queue"
)

// DeadLetter is a poisoned message kept for inspection: an orchestration
// batch (with the rest of the instance's inbox) or an activity work item,
// with the reason it was poisoned.
type DeadLetter struct {
	// ID names the dead letter (a stream id, which also tells when it
	// arrived); pass it to DropDeadLetter or RequeueDeadLetter.
	ID string
	// Kind is "orchestration" or "activity".
	Kind        string
	InstanceID  string
	ExecutionID int64
	// Reason says why the message is poison; Attempts and MaxAttempts how
	// often it was tried.
	Reason      string
	Attempts    int
	MaxAttempts int
	// Time is when the message was poisoned.
	Time time.Time
	// Messages (orchestration dead letters) is the instance's inbox when it
	// was poisoned, the poisoned batch first, in the wire format of
	// docs/protocol.md; HistoryLen is its history length before the poison.
	Messages   []string
	HistoryLen int
	// WorkBody (activity dead letters) is the work item, Bucket and Session
	// where it was queued and EventID the ActivityScheduled event it
	// belongs to.
	WorkBody string
	Bucket   string
	Session  string
	EventID  int64
}

// Dead-letter errors, the store's own values: test with errors.Is.
var (
	// ErrDeadLetterNotFound: no dead letter has that id.
	ErrDeadLetterNotFound = queue.ErrDeadLetterNotFound
	// ErrNotRequeueable: the instance is no longer the failed execution the
	// dead letter ended (it was requeued, deleted, or moved on).
	ErrNotRequeueable = queue.ErrNotRequeueable
)

// ListDeadLetters lists up to count dead letters after the id after ("" =
// from the oldest), oldest first; a count of zero or less means 100. A
// malformed after is ErrInvalidInput.
func (c *Client) ListDeadLetters(ctx context.Context, after string, count int) ([]DeadLetter, error) {
	if after != "" && !deadLetterIDRE.MatchString(after) {
		return nil, fmt.Errorf("%w: after %q is not a dead letter id: want MILLISECONDS-SEQUENCE", ErrInvalidInput, after)
	}
	dls, err := c.store.DeadLetters(ctx, after, count)
	if err != nil {
		return nil, err
	}
	out := make([]DeadLetter, len(dls))
	for i, d := range dls {
		out[i] = deadLetter(d)
	}
	return out, nil
}

func deadLetter(d queue.DeadLetter) DeadLetter {
	return DeadLetter{ID: d.ID, Kind: d.Kind, InstanceID: d.InstanceID, ExecutionID: int64(d.ExecutionID),
		Reason: d.Reason, Attempts: d.Attempts, MaxAttempts: d.MaxAttempts, Time: d.Time,
		Messages: d.Messages, HistoryLen: d.HistoryLen,
		WorkBody: d.WorkBody, Bucket: d.Bucket, Session: d.Session, EventID: d.EventID}
}

// deadLetterIDRE is the form of a dead-letter id: a Redis stream entry id.
var deadLetterIDRE = regexp.MustCompile(`^[0-9]{1,20}-[0-9]{1,20}$`)

// GetDeadLetter returns one dead letter. It returns ErrInvalidInput for an
// id that is not of the form MILLISECONDS-SEQUENCE and
// ErrDeadLetterNotFound for one that does not exist.
func (c *Client) GetDeadLetter(ctx context.Context, id string) (DeadLetter, error) {
	if !deadLetterIDRE.MatchString(id) {
		return DeadLetter{}, fmt.Errorf("%w: dead letter id %q: want MILLISECONDS-SEQUENCE", ErrInvalidInput, id)
	}
	d, err := c.store.DeadLetter(ctx, id)
	if err != nil {
		return DeadLetter{}, err
	}
	return deadLetter(d), nil
}

// DropDeadLetter deletes a dead letter; its instance stays failed.
func (c *Client) DropDeadLetter(ctx context.Context, id string) error {
	return c.store.DropDeadLetter(ctx, id)
}

// RequeueDeadLetter gives a poisoned message another chance with fresh
// attempts, typically after deploying the missing handler: the poison
// outcome is taken out of the instance's history (the OrchestrationFailed
// event, and for an activity everything from its poisoned completion on),
// the instance runs again, and its messages or activities are delivered
// again. A parent that was told its child failed is not told otherwise.
// It fails with ErrNotRequeueable if the instance has moved on.
func (c *Client) RequeueDeadLetter(ctx context.Context, id string) error {
	dl, err := c.store.DeadLetter(ctx, id)
	if err != nil {
		return err
	}
	if dl.Kind != "activity" {
		return c.store.RequeueDeadLetter(ctx, id, -1, nil)
	}
	rec, err := c.store.Instance(ctx, dl.InstanceID)
	if err != nil {
		return fmt.Errorf("requeueing dead letter %s: %w", id, err)
	}
	raw, err := c.store.History(ctx, dl.InstanceID, dl.ExecutionID)
	if err != nil {
		return err
	}
	history, err := replay.DecodeHistory(raw)
	if err != nil {
		return fmt.Errorf("requeueing dead letter %s: %w", id, err)
	}
	keep := -1
	for i, e := range history {
		if e.Kind == replay.EventActivityFailed && e.SourceID == dl.EventID && engine.IsPoison(e.Error) {
			keep = i
			break
		}
	}
	if keep < 0 {
		return fmt.Errorf("%w: %s: the poisoned completion of activity %d is not in the history of %s (not processed yet, or requeued)",
			ErrNotRequeueable, id, dl.EventID, dl.InstanceID)
	}
	// Every activity still open before the poisoned completion is queued
	// again unless its work item is still there (the failure took the
	// others back).
	closed := map[int64]bool{}
	for _, e := range history[:keep] {
		switch e.Kind {
		case replay.EventActivityCompleted, replay.EventActivityFailed, replay.EventActivityCancelRequested:
			closed[e.SourceID] = true
		}
	}
	var work []queue.WorkItem
	for _, e := range history[:keep] {
		if e.Kind != replay.EventActivityScheduled || closed[e.ID] {
			continue
		}
		req := replay.ActivityRequest{Instance: dl.InstanceID, Execution: int64(dl.ExecutionID), EventID: e.ID,
			Name: e.Name, Input: e.Input, Tag: e.Tag, Session: e.Session,
			OrchestrationName: rec.Name, OrchestrationVersion: rec.Version}
		body, err := replay.EncodeActivityRequest(req)
		if err != nil {
			return err
		}
		work = append(work, queue.WorkItem{Bucket: capability.ActivityBucketFor(e.Name, e.Tag), Body: body,
			Session: e.Session, ExecutionID: dl.ExecutionID, EventID: e.ID})
	}
	return c.store.RequeueDeadLetter(ctx, id, keep, work)
}
