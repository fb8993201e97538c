package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// InstanceRecord is the decoded instance hash inst:<id>.
type InstanceRecord struct {
	InstanceID string
	// Name is the orchestration name.
	Name string
	// Version is the version of the current execution, or the requested
	// version while Pending; it may be empty.
	Version string
	// Status is Pending, Running, Completed or Failed.
	Status string
	// ExecutionID is the current execution, 0 while Pending.
	ExecutionID uint64
	// EnginePin is the engine version pinned by the current execution, empty
	// until the first ack of that execution that set one.
	EnginePin        string
	ParentInstanceID string
	Output           string
	CreatedAt        time.Time
	UpdatedAt        time.Time
	// ReadyBucket is the ready bucket the instance is (re)queued into.
	ReadyBucket string
	// Attempts counts the deliveries of the current batch.
	Attempts int
	// Locked reports whether a lock token is set; the lock may have expired
	// without anybody taking it yet.
	Locked bool
	// CustomStatus is the value last set with OrchestrationAck.CustomStatus,
	// "" when never set or cleared.
	CustomStatus string
	// CustomStatusSet reports whether a custom status is set (it may be "").
	CustomStatusSet bool
	// CustomStatusVersion counts the custom status updates (set or clear) of
	// the instance, across executions; 0 when there were none.
	CustomStatusVersion int64
}

// decodeInstance builds a record from the fields of inst:<id>.
func decodeInstance(id string, h map[string]string) (InstanceRecord, error) {
	r := InstanceRecord{
		InstanceID:       id,
		Name:             h["name"],
		Version:          h["ver"],
		Status:           h["status"],
		EnginePin:        h["pin"],
		ParentInstanceID: h["parent"],
		Output:           h["out"],
		ReadyBucket:      h["rq"],
		Locked:           h["tok"] != "",
		CustomStatus:     h["cstatus"],
		CustomStatusSet:  h["cset"] == "1",
	}
	var err error
	if r.ExecutionID, err = parseUintField(h, "exec"); err != nil {
		return InstanceRecord{}, err
	}
	att, err := parseUintField(h, "att")
	if err != nil {
		return InstanceRecord{}, err
	}
	r.Attempts = int(att)
	csver, err := parseUintField(h, "csver")
	if err != nil {
		return InstanceRecord{}, err
	}
	r.CustomStatusVersion = int64(csver)
	ctime, err := parseUintField(h, "ctime")
	if err != nil {
		return InstanceRecord{}, err
	}
	utime, err := parseUintField(h, "utime")
	if err != nil {
		return InstanceRecord{}, err
	}
	r.CreatedAt = time.UnixMilli(int64(ctime))
	r.UpdatedAt = time.UnixMilli(int64(utime))
	return r, nil
}

func parseUintField(h map[string]string, field string) (uint64, error) {
	v := h[field]
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("decoding instance field %s=%q: %w", field, v, err)
	}
	return n, nil
}

// flatToMap turns an HGETALL reply inside a script result into a map.
func flatToMap(v any) (map[string]string, error) {
	flat, err := replyStrings(v)
	if err != nil {
		return nil, err
	}
	if len(flat)%2 != 0 {
		return nil, fmt.Errorf("odd hash reply length %d", len(flat))
	}
	m := make(map[string]string, len(flat)/2)
	for i := 0; i < len(flat); i += 2 {
		m[flat[i]] = flat[i+1]
	}
	return m, nil
}

// CreateRequest describes a new instance and its first message.
type CreateRequest struct {
	InstanceID string
	Name       string
	// Version is the requested version; it may be empty.
	Version          string
	ParentInstanceID string
	// Bucket is the ready bucket the instance waits in for its first turn. Required.
	Bucket string
	// Message is the first inbox message (typically the start message).
	Message string
	// RequestID, when set, names this request (see ValidateRequestID): a
	// second CreateInstance with the same request id and instance id within
	// RequestTTL, such as go-redis's resend of a script whose reply was
	// lost, returns nil as the first one did and writes nothing.
	RequestID string
	// RequestTTL is how long the request id is remembered; zero means the
	// default, the constant RequestTTL (15 minutes).
	RequestTTL time.Duration
}

// RequestTTL is how long a request id given to CreateInstance or
// EnqueueRequest is remembered by default.
const RequestTTL = 15 * time.Minute

// maxRequestIDLen is the longest request id ValidateRequestID accepts.
const maxRequestIDLen = 128

// ErrRequestReused is returned when a request id given to CreateInstance or
// EnqueueRequest was used, within RequestTTL, for a request of another kind
// or to another instance; nothing is written.
var ErrRequestReused = errors.New("request id already used for another request")

// requestTTLMillis is ttl in ms, RequestTTL when ttl is not positive.
func requestTTLMillis(ttl time.Duration) int64 {
	if ttl <= 0 {
		ttl = RequestTTL
	}
	return millis(ttl)
}

// ValidateRequestID reports whether id can name a request: 1 to 128
// (maxRequestIDLen) bytes of ASCII letters, digits, '_', '-', '.' and ':'.
func ValidateRequestID(id string) error {
	if id == "" || len(id) > maxRequestIDLen {
		return fmt.Errorf("request id %q must be 1 to %d bytes long", id, maxRequestIDLen)
	}
	for i := 0; i < len(id); i++ {
		if !prefixChar(id[i]) {
			return fmt.Errorf("request id %q contains %q; it may contain only ASCII letters, digits, '_', '-', '.' and ':'", id, id[i])
		}
	}
	return nil
}

// CreateInstance creates an instance in status Pending with Message in its
// inbox, makes it fetchable from Bucket now and announces Bucket on the
// wake:orch channel. It returns ErrInstanceExists if the id is taken, whatever
// the status of the existing instance, unless req.RequestID names a request
// that already created it (then nil). The announcement is published before
// anything is written, so a server that denies it (an ACL without channel
// permissions) leaves nothing behind.
func (s *Store) CreateInstance(ctx context.Context, req CreateRequest) error {
	if req.InstanceID == "" || req.Bucket == "" {
		return fmt.Errorf("creating instance %q: instance id and bucket are required", req.InstanceID)
	}
	k := s.keys
	keys := []string{k.Prefix(), k.InstanceKey(req.InstanceID), k.InboxKey(req.InstanceID), k.ReadyKey(req.Bucket)}
	args := []any{req.InstanceID, req.Name, req.Version, req.ParentInstanceID, req.Bucket, req.Message}
	if req.RequestID != "" {
		if err := ValidateRequestID(req.RequestID); err != nil {
			return fmt.Errorf("creating instance %s: %w", req.InstanceID, err)
		}
		keys = append(keys, k.requestKey(req.RequestID))
		args = append(args, req.RequestID, requestTTLMillis(req.RequestTTL))
	}
	err := s.create.Run(ctx, s.rdb, keys, args...).Err()
	if err != nil {
		return fmt.Errorf("creating instance %s: %w", req.InstanceID, mapScriptError(err))
	}
	return nil
}

// Enqueue appends message to an instance's inbox and makes the instance
// fetchable now, unless it is already waiting in its bucket (a locked or
// delayed instance keeps its score). It returns ErrInstanceNotFound or
// ErrInstanceEnded (Completed or Failed). The wake-up is published before
// anything is written, so a server that denies it writes nothing.
func (s *Store) Enqueue(ctx context.Context, instanceID, message string) error {
	return s.EnqueueRequest(ctx, instanceID, message, "", 0)
}

// EnqueueRequest is Enqueue named with a request id (see ValidateRequestID;
// "" means none): a second call with the same request id and instance id
// within ttl (zero means RequestTTL), such as go-redis's resend of a script
// whose reply was lost, returns nil as the first one did and does not
// deliver the message again, even if the instance has ended meanwhile.
func (s *Store) EnqueueRequest(ctx context.Context, instanceID, message, requestID string, ttl time.Duration) error {
	k := s.keys
	keys := []string{k.Prefix(), k.InstanceKey(instanceID)}
	args := []any{instanceID, message}
	if requestID != "" {
		if err := ValidateRequestID(requestID); err != nil {
			return fmt.Errorf("enqueueing to instance %s: %w", instanceID, err)
		}
		keys = append(keys, k.requestKey(requestID))
		args = append(args, requestID, requestTTLMillis(ttl))
	}
	err := s.enqueue.Run(ctx, s.rdb, keys, args...).Err()
	if err != nil {
		return fmt.Errorf("enqueueing to instance %s: %w", instanceID, mapScriptError(err))
	}
	return nil
}

// Instance reads an instance. It returns ErrInstanceNotFound if there is none.
func (s *Store) Instance(ctx context.Context, instanceID string) (InstanceRecord, error) {
	h, err := s.rdb.HGetAll(ctx, s.keys.InstanceKey(instanceID)).Result()
	if err != nil {
		return InstanceRecord{}, fmt.Errorf("reading instance %s: %w", instanceID, err)
	}
	if len(h) == 0 {
		return InstanceRecord{}, fmt.Errorf("reading instance %s: %w", instanceID, ErrInstanceNotFound)
	}
	r, err := decodeInstance(instanceID, h)
	if err != nil {
		return InstanceRecord{}, fmt.Errorf("reading instance %s: %w", instanceID, err)
	}
	return r, nil
}

// History returns the history events of one execution of an instance, oldest
// first; it is empty when there are none (including for unknown instances).
func (s *Store) History(ctx context.Context, instanceID string, executionID uint64) ([]string, error) {
	return s.HistoryRange(ctx, instanceID, executionID, 0, -1)
}

// HistoryRange returns the events start through stop (0-based, inclusive;
// negative counts from the end, as LRANGE) of one execution's history, so
// that a reader of the first event (the version an execution started on)
// need not read the whole history.
func (s *Store) HistoryRange(ctx context.Context, instanceID string, executionID uint64, start, stop int64) ([]string, error) {
	events, err := s.rdb.LRange(ctx, s.keys.HistoryKey(instanceID, executionID), start, stop).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("reading history of %s execution %d: %w", instanceID, executionID, err)
	}
	return events, nil
}

// EnginePins returns the engine versions that acks have pinned (the set
// only grows), in no particular order.
func (s *Store) EnginePins(ctx context.Context) ([]string, error) {
	pins, err := s.rdb.SMembers(ctx, s.keys.EnginesKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("reading engine pins: %w", err)
	}
	return pins, nil
}

// Subscribe subscribes to pub/sub channels, normally some of
// Keys().WakeOrchChannel(), WakeWorkChannel() and EndedChannel(). The caller
// closes the returned PubSub. Pub/sub is a hint to stop waiting early, not a
// delivery guarantee: a message published while nobody listens is lost, so
// fetchers also wake after FetchOrchestrationsResult.NextWake.
func (s *Store) Subscribe(ctx context.Context, channels ...string) *redis.PubSub {
	return s.rdb.Subscribe(ctx, channels...)
}
