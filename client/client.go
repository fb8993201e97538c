// Package client is what any service uses to drive duroworker without running
// workers: start orchestrations, raise events, read their status and wait for
// them to end. It talks only to the store, so it works from any process that
// can reach Redis.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/Masterminds/semver/v3"
	"github.com/cenkalti/backoff/v4"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/duroworker/duroworker/capability"
	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/internal/replay"
	"github.com/duroworker/duroworker/queue"
)

// Limits on what a client accepts.
const (
	// MaxInstanceIDBytes is the longest accepted instance id.
	MaxInstanceIDBytes = 512
	// MaxPayloadBytes is the largest accepted orchestration input or event
	// payload.
	MaxPayloadBytes = 4 << 20
	// MaxMessageBytes is the largest stored message a call may write: the
	// JSON form of the start message, event or cancellation, with its
	// payload escaped. Text stores at its own size (HTML characters are not
	// escaped), but a control character takes six bytes (\u0001) and '"'
	// and '\' two, so a payload of MaxPayloadBytes made of such characters is
	// refused rather than stored at up to six times its size.
	MaxMessageBytes = MaxPayloadBytes + 64<<10
)

// Errors returned by the client. Errors from the store wrap the queue
// package's sentinels, re-exported here so callers need not import queue.
var (
	// ErrInstanceExists: Start was called with the id of an existing instance.
	ErrInstanceExists = queue.ErrInstanceExists
	// ErrInstanceNotFound: no instance has that id.
	ErrInstanceNotFound = queue.ErrInstanceNotFound
	// ErrInstanceEnded: the instance has completed or failed and takes no more events.
	ErrInstanceEnded = queue.ErrInstanceEnded
	// ErrInvalidInput: an argument was rejected before anything was sent.
	ErrInvalidInput = errors.New("invalid input")
	// ErrRequestReused: the request id of WithRequestID was used, within
	// 15 minutes, for another instance or another kind of call.
	ErrRequestReused = queue.ErrRequestReused
)

// State is the lifecycle state of an instance (Status, InstanceInfo) or of
// one of its executions (ExecutionInfo). It is the one status vocabulary of
// duroworker: the store, the CLI and the wire protocol (docs/protocol.md)
// spell the states the same way.
type State string

// States.
const (
	// StateNotFound: no instance has the id (Status, Wait and WaitMany only).
	StateNotFound State = "NotFound"
	// StatePending: started, first turn not yet run.
	StatePending State = "Pending"
	// StateRunning: running, including a continue-as-new in flight.
	StateRunning State = "Running"
	// StateCompleted: ended with an output.
	StateCompleted State = "Completed"
	// StateFailed: ended with a failure.
	StateFailed State = "Failed"
	// StateContinuedAsNew: an execution that ended by continuing as a new
	// one (ExecutionInfo only; the instance itself stays Running).
	StateContinuedAsNew State = "ContinuedAsNew"
)

// Ended reports whether s is Completed or Failed.
func (s State) Ended() bool { return s == StateCompleted || s == StateFailed }

// Status is an instance's state and, once it has ended, its outcome.
type Status struct {
	// InstanceID is the instance the status belongs to.
	InstanceID string
	// State is where the instance is in its lifecycle.
	State State
	// Output is the orchestration's output (Completed).
	Output string
	// Failure is why it failed (Failed); errors.As works on it, and
	// Failure.Category tells application, infrastructure, configuration
	// (nondeterminism) and poison apart.
	Failure *engine.ErrorDetails
	// Version is the orchestration version of the current execution.
	Version string
	// ExecutionID is the current execution (0 while Pending).
	ExecutionID int64
	// CustomStatus is the status the orchestration published with
	// SetCustomStatus; CustomStatusSet is false when none is set.
	CustomStatus    string
	CustomStatusSet bool
	// CustomStatusVersion counts custom status updates (never decreases).
	CustomStatusVersion int64
}

// InstanceInfo describes an instance.
type InstanceInfo struct {
	InstanceID           string
	OrchestrationName    string
	OrchestrationVersion string
	CurrentExecutionID   int64
	Status               State
	Output               string
	Failure              *engine.ErrorDetails
	CreatedAt            time.Time
	UpdatedAt            time.Time
	ParentInstanceID     string
	// EnginePin is the engine version the current execution is pinned to.
	EnginePin string
	// CustomStatus, CustomStatusSet and CustomStatusVersion: see Status.
	CustomStatus        string
	CustomStatusSet     bool
	CustomStatusVersion int64
}

// CallOption configures one Start, StartVersioned, StartTyped, RaiseEvent,
// EnqueueEvent or Cancel call.
type CallOption func(*callOptions)

type callOptions struct {
	requestID string
}

// WithRequestID names the call with a request id of the caller's choosing
// (1 to 128 bytes of ASCII letters, digits, '_', '-', '.' and ':'). The
// store remembers a request that succeeded for 15
// minutes: repeating it with the same id and instance returns nil again
// and writes nothing, so a caller that did not get an answer (a timeout, a
// crash) can simply retry. Reusing the id for another instance or another
// kind of call fails with ErrRequestReused. Without this option each call
// gets a random request id, remembered for GeneratedRequestTTL, which
// covers go-redis's own resend of a command whose reply was lost.
func WithRequestID(id string) CallOption {
	return func(o *callOptions) { o.requestID = id }
}

// GeneratedRequestTTL is how long the store remembers the random request id
// of a call made without WithRequestID: long enough for go-redis's resends,
// short enough that the records of many calls take little memory.
const GeneratedRequestTTL = 2 * time.Minute

// requestID returns the request id of a call and how long the store keeps
// it: the caller's, or a new random one.
func requestID(opts []CallOption) (string, time.Duration, error) {
	var o callOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.requestID == "" {
		return uuid.NewString(), GeneratedRequestTTL, nil
	}
	if err := queue.ValidateRequestID(o.requestID); err != nil {
		return "", 0, fmt.Errorf("%w: %v", ErrInvalidInput, err)
	}
	return o.requestID, queue.RequestTTL, nil
}

// Client starts and inspects orchestrations. It is safe for concurrent use.
// Close releases the shared wait subscription.
type Client struct {
	store  *queue.Store
	waiter *waiter
}

// New returns a client for store.
func New(store *queue.Store) *Client {
	return &Client{store: store, waiter: newWaiter(store)}
}

// Close stops the client's background subscription, if Wait started one.
func (c *Client) Close() error {
	c.waiter.close()
	return nil
}

// Start starts orchestration name with input as instance id; the version is
// chosen by the registry policy of the worker that runs the first turn. It
// fails with ErrInstanceExists if the id is taken (by a running or ended
// instance), except by this very call: a resend of the call (see
// WithRequestID) returns nil as the first run did.
//
// Ids, names, versions and the input must be valid UTF-8; anything else is
// refused with ErrInvalidInput rather than changed (JSON would replace each
// invalid byte with U+FFFD).
func (c *Client) Start(ctx context.Context, instanceID, name, input string, opts ...CallOption) error {
	return c.StartVersioned(ctx, instanceID, name, "", input, opts...)
}

// StartVersioned is Start with an explicit orchestration version; an empty
// version means the registry policy.
func (c *Client) StartVersioned(ctx context.Context, instanceID, name, version, input string, opts ...CallOption) error {
	if err := validateInstanceID(instanceID); err != nil {
		return err
	}
	if strings.Contains(instanceID, engine.SubOrchestrationMarker) {
		return fmt.Errorf("%w: instance id %q contains %q, which is reserved for generated sub-orchestration ids", ErrInvalidInput, instanceID, engine.SubOrchestrationMarker)
	}
	if err := validateText("orchestration name", name); err != nil {
		return err
	}
	if err := capability.ValidateName("orchestration", name); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidInput, err)
	}
	if strings.HasPrefix(name, replay.ReservedPrefix) {
		return fmt.Errorf("%w: orchestration name %q starts with %q, which is reserved for duroworker's own orchestrations", ErrInvalidInput, name, replay.ReservedPrefix)
	}
	if version != "" {
		v, err := semver.StrictNewVersion(version)
		if err != nil {
			return fmt.Errorf("%w: version %q is not a semver version (MAJOR.MINOR.PATCH)", ErrInvalidInput, version)
		}
		version = v.String()
	}
	if err := checkPayload("input", input); err != nil {
		return err
	}
	reqID, reqTTL, err := requestID(opts)
	if err != nil {
		return err
	}
	ctx, span := otel.Tracer("github.com/duroworker/duroworker/client").Start(ctx, "start "+name,
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attribute.String("duroworker.instance", instanceID), attribute.String("duroworker.orchestration", name)))
	defer span.End()
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, carrier)
	msg, err := replay.EncodeMessage(replay.Message{Kind: replay.MessageStart, Execution: 1, Name: name, Version: version, Input: input,
		Trace: carrier["traceparent"]})
	if err != nil {
		return err
	}
	if err := checkMessage("input", msg); err != nil {
		return err
	}
	bucket := capability.StartBucket(name)
	if version != "" {
		bucket = capability.StartVersionBucket(name, version)
	}
	err = c.store.CreateInstance(ctx, queue.CreateRequest{
		InstanceID: instanceID, Name: name, Version: version, Bucket: bucket, Message: msg, RequestID: reqID, RequestTTL: reqTTL,
	})
	if err != nil {
		return fmt.Errorf("starting %s: %w%s", instanceID, err, c.aclHint(err))
	}
	return nil
}

// StartTyped is Start with an input encoded by engine.Encode.
func (c *Client) StartTyped(ctx context.Context, instanceID, name string, input any, opts ...CallOption) error {
	in, err := engine.Encode(input)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidInput, err)
	}
	return c.Start(ctx, instanceID, name, in, opts...)
}

// RaiseEvent delivers a named external event to a running instance. It fails
// with ErrInstanceNotFound or ErrInstanceEnded, except that a resend of this
// very call (see WithRequestID) returns nil as the first run did, without
// delivering the event twice. The name and data must be valid UTF-8.
func (c *Client) RaiseEvent(ctx context.Context, instanceID, name, data string, opts ...CallOption) error {
	return c.send(ctx, instanceID, "event name", name, data, replay.MessageExternalEvent, opts)
}

// send enqueues a named message (external or queue event) for an instance.
func (c *Client) send(ctx context.Context, instanceID, what, name, data string, kind replay.MessageKind, opts []CallOption) error {
	if err := validateInstanceID(instanceID); err != nil {
		return err
	}
	if name == "" {
		return fmt.Errorf("%w: %s is empty", ErrInvalidInput, what)
	}
	if err := validateText(what, name); err != nil {
		return err
	}
	if err := checkPayload("event data", data); err != nil {
		return err
	}
	reqID, reqTTL, err := requestID(opts)
	if err != nil {
		return err
	}
	msg, err := replay.EncodeMessage(replay.Message{Kind: kind, Name: name, Result: data})
	if err != nil {
		return err
	}
	if err := checkMessage("event data", msg); err != nil {
		return err
	}
	if err := c.store.EnqueueRequest(ctx, instanceID, msg, reqID, reqTTL); err != nil {
		return fmt.Errorf("sending %s %q to %s: %w%s", kind, name, instanceID, err, c.aclHint(err))
	}
	return nil
}

// EnqueueEvent puts data on the event queue name of a running instance,
// where the orchestration takes messages in FIFO order with DequeueEvent.
// Unlike RaiseEvent, a message that arrives before the orchestration asks
// for it is kept (and carried across continue-as-new).
func (c *Client) EnqueueEvent(ctx context.Context, instanceID, queueName, data string, opts ...CallOption) error {
	return c.send(ctx, instanceID, "queue name", queueName, data, replay.MessageQueueEvent, opts)
}

// Cancel asks a running instance to end: it fails with a cancelled error
// (display "canceled: <reason>"), its running activities lose their locks and
// their contexts are cancelled, and its sub-orchestrations are cancelled too.
// Cancelling an ended instance returns ErrInstanceEnded, except that a resend
// of this very call (see WithRequestID) returns nil as the first run did.
// The reason must be valid UTF-8.
func (c *Client) Cancel(ctx context.Context, instanceID, reason string, opts ...CallOption) error {
	if err := validateInstanceID(instanceID); err != nil {
		return err
	}
	if err := checkPayload("reason", reason); err != nil {
		return err
	}
	reqID, reqTTL, err := requestID(opts)
	if err != nil {
		return err
	}
	msg, err := replay.EncodeMessage(replay.Message{Kind: replay.MessageCancel, Reason: reason})
	if err != nil {
		return err
	}
	if err := checkMessage("reason", msg); err != nil {
		return err
	}
	if err := c.store.EnqueueRequest(ctx, instanceID, msg, reqID, reqTTL); err != nil {
		return fmt.Errorf("cancelling %s: %w%s", instanceID, err, c.aclHint(err))
	}
	return nil
}

// GetInstanceInfo returns what the store knows of an instance; the
// orchestration version changes only when a new execution starts.
func (c *Client) GetInstanceInfo(ctx context.Context, instanceID string) (InstanceInfo, error) {
	rec, err := c.store.Instance(ctx, instanceID)
	if err != nil {
		return InstanceInfo{}, fmt.Errorf("reading instance %s: %w", instanceID, err)
	}
	return infoFromRecord(rec), nil
}

// Status returns the instance's state; a missing instance is StateNotFound,
// not an error.
func (c *Client) Status(ctx context.Context, instanceID string) (Status, error) {
	info, err := c.GetInstanceInfo(ctx, instanceID)
	if errors.Is(err, ErrInstanceNotFound) {
		return Status{InstanceID: instanceID, State: StateNotFound}, nil
	}
	if err != nil {
		return Status{}, err
	}
	return statusOf(info), nil
}

// statusOf is the Status part of info.
func statusOf(info InstanceInfo) Status {
	return Status{InstanceID: info.InstanceID, State: info.Status, Output: info.Output, Failure: info.Failure,
		Version: info.OrchestrationVersion, ExecutionID: info.CurrentExecutionID,
		CustomStatus: info.CustomStatus, CustomStatusSet: info.CustomStatusSet,
		CustomStatusVersion: info.CustomStatusVersion}
}

// WaitForStatusChange blocks until the instance's custom status version is
// greater than lastSeen (or the instance ends), and returns its status. Use
// the returned CustomStatusVersion as the next lastSeen. It polls the store
// with a backoff from 10 ms to pollMax (zero means 1 s) until ctx ends.
func (c *Client) WaitForStatusChange(ctx context.Context, instanceID string, lastSeen int64, pollMax time.Duration) (Status, error) {
	if pollMax <= 0 {
		pollMax = time.Second
	}
	delay := 10 * time.Millisecond
	for {
		st, err := c.Status(ctx, instanceID)
		if err == nil {
			if st.State == StateNotFound {
				return st, fmt.Errorf("waiting for a status change of %s: %w", instanceID, ErrInstanceNotFound)
			}
			if st.CustomStatusVersion > lastSeen || st.State.Ended() {
				return st, nil
			}
		}
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("waiting for a status change of %s: %w", instanceID, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, pollMax)
	}
}

// GetKV reads key from an instance's key-value state (including the
// running execution's writes). ok is false when the key is not set.
func (c *Client) GetKV(ctx context.Context, instanceID, key string) (value string, ok bool, err error) {
	v, ok, err := c.store.KV(ctx, instanceID, key)
	if err != nil {
		return "", false, fmt.Errorf("reading key %q of %s: %w", key, instanceID, err)
	}
	return v, ok, nil
}

// GetKVAll reads an instance's whole key-value state.
func (c *Client) GetKVAll(ctx context.Context, instanceID string) (map[string]string, error) {
	all, err := c.store.KVAll(ctx, instanceID)
	if err != nil {
		return nil, fmt.Errorf("reading key-value state of %s: %w", instanceID, err)
	}
	out := make(map[string]string, len(all))
	for k, e := range all {
		out[k] = e.Value
	}
	return out, nil
}

// Wait blocks until the instance completes or fails, or ctx ends. Waits
// share one Redis subscription per client instead of polling per instance.
// A missing instance returns ErrInstanceNotFound. Store errors are retried
// with backoff (Redis may be restarting) until ctx ends; the last one is
// returned with ctx's error. If Redis denies the subscription (an ACL
// without the channel), the client logs it once with slog.Default, re-reads
// the status of each waited instance every second and keeps trying to
// subscribe. To wait for many instances, WaitMany reads each one less often.
func (c *Client) Wait(ctx context.Context, instanceID string) (Status, error) {
	ch, cancel := c.waiter.watch(instanceID)
	defer cancel()
	retry := 50 * time.Millisecond
	for {
		st, err := c.Status(ctx, instanceID)
		if err != nil {
			select {
			case <-ctx.Done():
				return Status{}, fmt.Errorf("waiting for %s: %w (last error: %v)", instanceID, ctx.Err(), err)
			case <-time.After(retry):
			}
			retry = min(2*retry, 2*time.Second)
			continue
		}
		retry = 50 * time.Millisecond
		if st.State == StateNotFound {
			return st, fmt.Errorf("waiting for %s: %w", instanceID, ErrInstanceNotFound)
		}
		if st.State.Ended() {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("waiting for %s: %w", instanceID, ctx.Err())
		case <-ch:
		}
	}
}

// Ready starts the client's shared subscription to instance ends, unless
// a Wait or WaitMany started it already, and blocks until Redis has
// confirmed it, or ctx ends (with ctx's error). From then on, an instance
// that ends wakes its waiters at once. If the subscription drops later
// (Redis restarts, the connection fails), the client subscribes again on
// its own and every waiter reads its statuses again, so that no end
// published meanwhile is missed; Ready blocks again until the new
// subscription is confirmed. While Redis denies the subscription (an ACL
// without the channel), Ready blocks. After Close it fails.
func (c *Client) Ready(ctx context.Context) error {
	if err := c.waiter.ready(ctx); err != nil {
		return fmt.Errorf("waiting for the subscription to instance ends: %w", err)
	}
	return nil
}

// waitReadBatch is the largest number of instances WaitMany reads in one
// pipelined round trip.
const waitReadBatch = 1000

// WaitMany waits for the instances ids to end and yields the status of
// each once, when it has ended (Completed or Failed): those that have
// already ended first, then the others as their ends are noticed. A
// missing instance yields its StateNotFound status and an error wrapping
// ErrInstanceNotFound, and the others are still waited for; a repeated id
// is waited for once. When ctx ends, the last value yielded is a zero
// Status with an error wrapping ctx's error. Leaving the loop early stops
// the wait.
//
//	for st, err := range c.WaitMany(ctx, ids) {
//		if err != nil {
//			// ErrInstanceNotFound (st.InstanceID says which), or ctx ended
//		}
//		...
//	}
//
// WaitMany shares the client's subscription with Wait (see Ready). It
// reads the statuses once up front, in one pipelined round trip per 1,000
// instances, then reads an instance again only when its end is
// published; it reads every remaining instance again, in one batch, only
// when a notification may have been missed: the subscription was renewed
// (Redis restarted, the connection failed) and, as a safety net, every 30
// seconds. Store errors are retried with backoff until ctx ends.
func (c *Client) WaitMany(ctx context.Context, ids []string) iter.Seq2[Status, error] {
	return func(yield func(Status, error) bool) {
		remaining := make(map[string]bool, len(ids))
		order := make([]string, 0, len(ids)) // the ids without duplicates
		for _, id := range ids {
			if !remaining[id] {
				remaining[id] = true
				order = append(order, id)
			}
		}
		if len(order) == 0 {
			return
		}
		wt := c.waiter.watchMany(order)
		defer c.waiter.unwatch(wt, order)
		bo := backoff.NewExponentialBackOff()
		bo.InitialInterval, bo.MaxInterval, bo.MaxElapsedTime = 50*time.Millisecond, 2*time.Second, 0
		stillWaiting := func(ids []string) []string {
			out := make([]string, 0, len(ids))
			for _, id := range ids {
				if remaining[id] {
					out = append(out, id)
				}
			}
			return out
		}
		toRead := order
		var lastErr error
		for {
			if len(toRead) > 0 {
				ended, missing, err := c.readEnded(ctx, toRead)
				if err != nil {
					lastErr = err
					select {
					case <-ctx.Done():
						yield(Status{}, fmt.Errorf("waiting for %d instances: %w (last error: %v)", len(remaining), ctx.Err(), err))
						return
					case <-time.After(bo.NextBackOff()):
					}
					notified, all := c.waiter.take(wt)
					if all {
						toRead = stillWaiting(order)
					} else {
						toRead = slices.Compact(slices.Sorted(slices.Values(append(toRead, stillWaiting(notified)...))))
					}
					continue
				}
				bo.Reset()
				lastErr = nil
				for _, st := range ended {
					delete(remaining, st.InstanceID)
					c.waiter.unwatch(wt, []string{st.InstanceID})
					if !yield(st, nil) {
						return
					}
				}
				for _, id := range missing {
					delete(remaining, id)
					c.waiter.unwatch(wt, []string{id})
					if !yield(Status{InstanceID: id, State: StateNotFound}, fmt.Errorf("waiting for %s: %w", id, ErrInstanceNotFound)) {
						return
					}
				}
				if len(remaining) == 0 {
					return
				}
			}
			select {
			case <-ctx.Done():
				err := fmt.Errorf("waiting for %d instances: %w", len(remaining), ctx.Err())
				if lastErr != nil {
					err = fmt.Errorf("%w (last error: %v)", err, lastErr)
				}
				yield(Status{}, err)
				return
			case <-wt.ch:
			}
			notified, all := c.waiter.take(wt)
			if all {
				toRead = stillWaiting(order)
			} else {
				toRead = stillWaiting(notified)
			}
		}
	}
}

// readEnded reads the records of ids in pipelined batches and returns the
// statuses of those that have ended and the ids of those that do not
// exist, both in the order of ids.
func (c *Client) readEnded(ctx context.Context, ids []string) (ended []Status, missing []string, err error) {
	for chunk := range slices.Chunk(ids, waitReadBatch) {
		recs, err := c.store.Instances(ctx, chunk)
		if err != nil {
			return nil, nil, err
		}
		found := make(map[string]queue.InstanceRecord, len(recs))
		for _, r := range recs {
			found[r.InstanceID] = r
		}
		for _, id := range chunk {
			r, ok := found[id]
			switch {
			case !ok:
				missing = append(missing, id)
			case State(r.Status).Ended():
				ended = append(ended, statusOf(infoFromRecord(r)))
			}
		}
	}
	return ended, missing, nil
}

// aclHint explains an ACL denial of the wake-up channel: the scripts
// publish before they write, so nothing was written.
func (c *Client) aclHint(err error) string {
	msg := err.Error()
	if !strings.Contains(msg, "channel") || !strings.Contains(msg, "NOPERM") && !strings.Contains(msg, "can't publish") {
		return ""
	}
	p := c.store.Keys().Prefix()
	return " (a Redis ACL denies the channel " + p + "wake:orch, nothing was written: grant &" + p + "* to this user)"
}

func decodeFailure(s string) *engine.ErrorDetails {
	var d engine.ErrorDetails
	if err := json.Unmarshal([]byte(s), &d); err != nil || d.Category == "" {
		return &engine.ErrorDetails{Category: engine.CategoryApplication, Kind: engine.KindOrchestrationFailed, Message: s}
	}
	return &d
}

func validateInstanceID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: instance id is empty", ErrInvalidInput)
	case len(id) > MaxInstanceIDBytes:
		return fmt.Errorf("%w: instance id is %d bytes (max %d)", ErrInvalidInput, len(id), MaxInstanceIDBytes)
	case !utf8.ValidString(id):
		return fmt.Errorf("%w: instance id %q is not valid UTF-8", ErrInvalidInput, id)
	case strings.IndexFunc(id, unicode.IsControl) >= 0:
		return fmt.Errorf("%w: instance id %q contains a control character", ErrInvalidInput, id)
	}
	return nil
}

// validateText refuses a string that is not valid UTF-8: the stored form is
// JSON, whose encoder would silently replace each invalid byte with U+FFFD.
func validateText(what, s string) error {
	if utf8.ValidString(s) {
		return nil
	}
	i := invalidUTF8At(s)
	return fmt.Errorf("%w: %s is not valid UTF-8 (byte 0x%02x at offset %d); send text, or encode binary data (base64, for example)", ErrInvalidInput, what, s[i], i)
}

// invalidUTF8At returns the offset of the first invalid UTF-8 byte of s.
func invalidUTF8At(s string) int {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return 0
}

func checkPayload(what, s string) error {
	if len(s) > MaxPayloadBytes {
		return fmt.Errorf("%w: %s is %d bytes (max %d)", ErrInvalidInput, what, len(s), MaxPayloadBytes)
	}
	return validateText(what, s)
}

// checkMessage refuses a message whose stored (JSON-escaped) form is larger
// than MaxMessageBytes.
func checkMessage(what, msg string) error {
	if len(msg) > MaxMessageBytes {
		return fmt.Errorf("%w: %s is stored as %d bytes of JSON (max %d): control characters take 6 bytes each and '\"' and '\\' 2 once escaped", ErrInvalidInput, what, len(msg), MaxMessageBytes)
	}
	return nil
}
