package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrDeadLetterNotFound is returned for an unknown dead-letter id.
var ErrDeadLetterNotFound = errors.New("dead letter not found")

// ErrNotRequeueable is returned by RequeueDeadLetter when the instance is no
// longer the failed execution the dead letter ended (it was requeued,
// deleted, or moved on).
var ErrNotRequeueable = errors.New("dead letter cannot be requeued")

// DeadLetterNote says why a message is poison; see OrchestrationAck.DeadLetter
// and AckWorkPoisoned.
type DeadLetterNote struct {
	Reason      string
	Attempts    int
	MaxAttempts int
}

// DeadLetter is one entry of the dead-letter stream.
type DeadLetter struct {
	ID          string // stream id, also its time of arrival
	Kind        string // "orchestration" or "activity"
	InstanceID  string
	ExecutionID uint64
	Reason      string
	Attempts    int
	MaxAttempts int
	Time        time.Time
	// Orchestration dead letters: the instance's inbox when it was poisoned
	// (the poisoned batch first) and its history length before the poison.
	Messages   []string
	HistoryLen int
	// Activity dead letters: the work item and where it was queued.
	WorkBody string
	Bucket   string
	Session  string
	EventID  int64
}

// DeadLetters lists up to count entries after the stream id after ("" = from
// the start), oldest first.
func (s *Store) DeadLetters(ctx context.Context, after string, count int) ([]DeadLetter, error) {
	start := "-"
	if after != "" {
		start = "(" + after
	}
	if count <= 0 {
		count = 100
	}
	msgs, err := s.rdb.XRangeN(ctx, s.keys.DeadLettersKey(), start, "+", int64(count)).Result()
	if err != nil {
		return nil, fmt.Errorf("listing dead letters: %w", err)
	}
	out := make([]DeadLetter, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, decodeDeadLetter(m))
	}
	return out, nil
}

// DeadLetter reads one entry.
func (s *Store) DeadLetter(ctx context.Context, id string) (DeadLetter, error) {
	msgs, err := s.rdb.XRange(ctx, s.keys.DeadLettersKey(), id, id).Result()
	if err != nil {
		return DeadLetter{}, fmt.Errorf("reading dead letter %s: %w", id, err)
	}
	if len(msgs) == 0 {
		return DeadLetter{}, fmt.Errorf("%w: %s", ErrDeadLetterNotFound, id)
	}
	return decodeDeadLetter(msgs[0]), nil
}

// DropDeadLetter removes an entry; its instance stays as it is.
func (s *Store) DropDeadLetter(ctx context.Context, id string) error {
	n, err := s.rdb.XDel(ctx, s.keys.DeadLettersKey(), id).Result()
	if err != nil {
		return fmt.Errorf("dropping dead letter %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %s", ErrDeadLetterNotFound, id)
	}
	return nil
}

// RequeueDeadLetter undoes the poison outcome of a dead letter and delivers
// its work again with fresh attempts: the failed execution's history is cut
// back to keep events (-1: the length recorded with an orchestration dead
// letter), the instance is Running again (or Pending, if the poison hit its
// first start), an orchestration dead letter's messages go back to its
// inbox, and work (an activity dead letter's item, and any open activity
// whose item the failure removed) is queued unless still present. The entry
// is removed. It fails with ErrNotRequeueable if the instance is no longer
// that failed execution.
func (s *Store) RequeueDeadLetter(ctx context.Context, id string, keep int, work []WorkItem) error {
	args := []any{id, keep, len(work)}
	for _, w := range work {
		ref := ""
		if w.ExecutionID != 0 {
			ref = ActivityRef{ExecutionID: w.ExecutionID, EventID: w.EventID}.String()
		}
		args = append(args, w.Bucket, w.Body, ref, w.Session)
	}
	if err := s.requeue.Run(ctx, s.rdb, []string{s.keys.Prefix()}, args...).Err(); err != nil {
		return fmt.Errorf("requeueing dead letter %s: %w", id, mapScriptError(err))
	}
	return nil
}

func decodeDeadLetter(m redis.XMessage) DeadLetter {
	str := func(k string) string { v, _ := m.Values[k].(string); return v }
	num := func(k string) int64 { n, _ := strconv.ParseInt(str(k), 10, 64); return n }
	d := DeadLetter{
		ID: m.ID, Kind: str("kind"), InstanceID: str("instance"), ExecutionID: uint64(num("execution")),
		Reason: str("reason"), Attempts: int(num("attempts")), MaxAttempts: int(num("max_attempts")),
		Time: time.UnixMilli(num("time")), HistoryLen: int(num("hlen")),
		WorkBody: str("body"), Bucket: str("bucket"), Session: str("session"), EventID: num("event"),
	}
	if msgs := str("messages"); msgs != "" {
		d.Messages = decodeIDs(msgs)
	}
	return d
}

// decodeIDs parses "<len>:<s><len>:<s>..." (the Lua encode_ids form).
func decodeIDs(s string) []string {
	var out []string
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != ':' {
			i++
		}
		n, err := strconv.Atoi(s[:i])
		if err != nil || i+1+n > len(s) {
			break
		}
		out = append(out, s[i+1:i+1+n])
		s = s[i+1+n:]
	}
	return out
}
