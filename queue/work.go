package queue

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// FetchWorkRequest asks for work items to run.
type FetchWorkRequest struct {
	// RequestID names this call; see FetchOrchestrationsRequest.RequestID.
	// If empty, a random id is used.
	RequestID string
	// Buckets are the work buckets this worker serves. Duplicates and empty
	// names are ignored.
	Buckets []string
	// Max is the largest number of items to lock; it must be at least 1.
	Max int
	// LockTimeout is how long the locks last unless renewed; it must be positive.
	LockTimeout time.Duration
	// SessionOwner is the owner id this worker claims sessions under; empty
	// means it takes no session work (items of a session with a live owner
	// are still routed to that owner). Include NodeWorkBucket(SessionOwner)
	// in Buckets to receive the work of the sessions it holds.
	SessionOwner string
	// SessionLease is the lease a claimed session gets (renewed by
	// RenewSessions); MaxSessions bounds the sessions the owner holds.
	SessionLease time.Duration
	MaxSessions  int
	// NodeID is the worker node that takes the locks; see
	// FetchOrchestrationsRequest.NodeID. It is also the consumer name in the
	// work streams' group ("-" when empty).
	NodeID string
	// Read lists entries this caller read with ReadWork (same NodeID) and
	// has not locked yet: they are locked first, if still pending for it.
	// An entry beyond Max is put back at the end of its bucket's stream.
	Read []ReadEntry
	// RecoverReads also locks, first, the entries of the buckets that are
	// pending for NodeID's consumer but that no lock holds: those a
	// ReadWork delivered although its caller never saw the reply (a
	// connection lost mid-read), and those an earlier process with the
	// same NodeID read before it stopped. Without it they are taken back
	// only after 5 minutes of idle time (or when the node is found dead).
	// Workers set it on their first fetch, after a failed read, and at
	// most every heartbeat otherwise; it costs one XPENDING per bucket
	// (looking at up to 1,000 pending entries of the node per bucket).
	RecoverReads bool
}

// ReadEntry is a work stream entry that ReadWork delivered to a consumer
// but that no fetch has locked yet.
type ReadEntry struct {
	Bucket  string
	EntryID string
	WorkID  string
}

// FetchedWork is one locked work item.
type FetchedWork struct {
	ID string
	// Token is the lock token to pass to AckWork, AbandonWork and RenewWork.
	Token  string
	Bucket string
	Body   string
	// InstanceID is the instance whose ack created the item; AckWork delivers
	// the completion there.
	InstanceID string
	// Attempts is the delivery count after this fetch (1 on first delivery).
	Attempts int
}

// FetchWorkResult is the outcome of FetchWork.
type FetchWorkResult struct {
	Items []FetchedWork
	// NextWake is the time until the earliest entry left in the served
	// buckets (at least 1 ms when one is already due), 0 when there is none.
	// A caller that got Max items should fetch again at once: NextWake is
	// then 1 ms, not computed.
	NextWake time.Duration
}

// FetchWork locks up to Max ready work items of the served buckets. Each
// work bucket is a Redis stream read through one consumer group: the
// fetch locks, in this order, the entries in Read, entries whose lock
// expired (taken back with XCLAIM; Attempts+1, new token), and new entries
// (XREADGROUP). Attempts is the stream's delivery count plus the attempts
// kept across abandons. It is idempotent per RequestID like
// FetchOrchestrations.
func (s *Store) FetchWork(ctx context.Context, req FetchWorkRequest) (FetchWorkResult, error) {
	k := s.keys
	var tail []any
	for _, e := range req.Read {
		tail = append(tail, e.Bucket, e.EntryID, e.WorkID)
	}
	items, wake, err := runFetch(ctx, s, fetchCall{
		what: "fetching work", script: s.fetchWork,
		requestID: req.RequestID, max: req.Max, lock: req.LockTimeout,
		buckets: req.Buckets, bucketKey: k.WorkStreamKey,
		keys: func(id string) []string { return []string{k.Prefix(), k.fetchWorkRequestKey(id)} },
		args: func(id string) []any {
			recoverReads := "0"
			if req.RecoverReads {
				recoverReads = "1"
			}
			return []any{id, req.Max, millis(req.LockTimeout), req.SessionOwner, millis(req.SessionLease), req.MaxSessions, req.NodeID, recoverReads}
		},
		tail: tail,
	}, decodeWorkItem)
	return FetchWorkResult{Items: items, NextWake: wake}, err
}

// ReadWorkRequest asks ReadWork to wait for new work.
type ReadWorkRequest struct {
	// Buckets are the work buckets to read (duplicates and empty names are
	// ignored); NodeID names the consumer, as in FetchWorkRequest.
	Buckets []string
	NodeID  string
	// Count bounds the entries read per bucket (at least 1); Block is how
	// long to wait when there are none (positive).
	Count int
	Block time.Duration
}

// workConsumer is the consumer name of node id node in the work streams'
// group (common.lua wq_consumer).
func workConsumer(node string) string {
	if node == "" {
		return "-"
	}
	return node
}

// ReadWork waits up to Block for new entries in the served buckets' streams
// (one XREADGROUP ... BLOCK across them) and returns them unlocked: the
// caller passes them to FetchWork (FetchWorkRequest.Read) to lock them. The
// entries are pending for the caller's consumer from now on; if it never
// locks them (a crash, a lost reply), a fetch of the same NodeID with
// RecoverReads locks them, and any fetch takes them back once they have
// been idle for 5 minutes. It returns no entries
// when Block passes first. Streams that do not exist yet are created (with
// their group).
func (s *Store) ReadWork(ctx context.Context, req ReadWorkRequest) ([]ReadEntry, error) {
	return s.readWork(ctx, s.rdb, req)
}

// readWork is ReadWork with the XREADGROUP sent through c.
func (s *Store) readWork(ctx context.Context, c redis.Cmdable, req ReadWorkRequest) ([]ReadEntry, error) {
	if req.Count < 1 || req.Block <= 0 {
		return nil, fmt.Errorf("reading work: Count must be at least 1 and Block positive, got %d and %v", req.Count, req.Block)
	}
	buckets := dedupe(req.Buckets)
	if len(buckets) == 0 {
		return nil, fmt.Errorf("reading work: no buckets")
	}
	streams := make([]string, 0, 2*len(buckets))
	byKey := make(map[string]string, len(buckets))
	for _, b := range buckets {
		key := s.keys.WorkStreamKey(b)
		byKey[key] = b
		streams = append(streams, key)
	}
	for range buckets {
		streams = append(streams, ">")
	}
	args := &redis.XReadGroupArgs{Group: WorkGroup, Consumer: workConsumer(req.NodeID), Streams: streams, Count: int64(req.Count), Block: req.Block}
	res, err := c.XReadGroup(ctx, args).Result()
	if err != nil && strings.HasPrefix(err.Error(), "NOGROUP") {
		for _, key := range streams[:len(buckets)] {
			if err := s.rdb.XGroupCreateMkStream(ctx, key, WorkGroup, "0").Err(); err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
				return nil, fmt.Errorf("reading work: creating the group of %s: %w", key, err)
			}
		}
		res, err = c.XReadGroup(ctx, args).Result()
	}
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading work: %w", err)
	}
	var out []ReadEntry
	for _, st := range res {
		for _, m := range st.Messages {
			wid, _ := m.Values["w"].(string)
			out = append(out, ReadEntry{Bucket: byKey[st.Stream], EntryID: m.ID, WorkID: wid})
		}
	}
	return out, nil
}

// fetchCall is one run of a fetch script (fetch_orch.lua, fetch_work.lua),
// described for runFetch.
type fetchCall struct {
	what      string // the operation, first in every error: "fetching work"
	script    *redis.Script
	requestID string // "" means a random one
	max       int
	lock      time.Duration
	buckets   []string
	bucketKey func(bucket string) string
	// keys and args are the KEYS and ARGV in front of the buckets' keys and
	// names, for request id id; tail are ARGV after the bucket names.
	keys func(id string) []string
	args func(id string) []any
	tail []any
}

// runFetch is the request runner FetchOrchestrations and FetchWork share:
// it checks Max and LockTimeout, names the request, runs c.script with the
// fixed keys and arguments followed by one key and one name per distinct
// bucket, and decodes the reply {next_wake_ms, item...} with decodeItem.
// On error it returns no items.
func runFetch[T any](ctx context.Context, s *Store, c fetchCall, decodeItem func(any) (T, error)) ([]T, time.Duration, error) {
	if c.max < 1 {
		return nil, 0, fmt.Errorf("%s: Max must be at least 1, got %d", c.what, c.max)
	}
	if c.lock <= 0 {
		return nil, 0, fmt.Errorf("%s: LockTimeout must be positive, got %v", c.what, c.lock)
	}
	id := c.requestID
	if id == "" {
		id = newRequestID()
	}
	keys, args := c.keys(id), c.args(id)
	for _, b := range dedupe(c.buckets) {
		keys = append(keys, c.bucketKey(b))
		args = append(args, b)
	}
	args = append(args, c.tail...)
	raw, err := c.script.Run(ctx, s.rdb, keys, args...).Slice()
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", c.what, mapScriptError(err))
	}
	items, wake, err := decodeFetchReply(raw, decodeItem)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: decoding reply: %w", c.what, err)
	}
	return items, wake, nil
}

// decodeFetchReply decodes {next_wake_ms, item...}.
func decodeFetchReply[T any](raw []any, decodeItem func(any) (T, error)) ([]T, time.Duration, error) {
	if len(raw) == 0 {
		return nil, 0, fmt.Errorf("empty reply")
	}
	wake, err := replyInt(raw[0])
	if err != nil {
		return nil, 0, err
	}
	var items []T
	for _, v := range raw[1:] {
		it, err := decodeItem(v)
		if err != nil {
			return nil, 0, err
		}
		items = append(items, it)
	}
	return items, time.Duration(wake) * time.Millisecond, nil
}

// decodeWorkItem decodes one item of a fetch_work.lua reply.
func decodeWorkItem(v any) (FetchedWork, error) {
	var w FetchedWork
	f, err := replyArray(v, 6)
	if err != nil {
		return w, err
	}
	for i, dst := range []*string{&w.ID, &w.Token, &w.Bucket, &w.Body, &w.InstanceID} {
		if *dst, err = replyString(f[i]); err != nil {
			return w, err
		}
	}
	att, err := replyInt(f[5])
	if err != nil {
		return w, err
	}
	w.Attempts = int(att)
	return w, nil
}

// WorkReader runs ReadWork on a connection of its own, so that a read
// blocked in Redis can be cut short when the context of Read ends: the
// store sends CLIENT UNBLOCK for that connection, and Read returns what the
// read got by then (normally nothing), which the caller releases. Where
// CLIENT ID or CLIENT UNBLOCK is not available (an ACL that denies them,
// miniredis), the reader reads on a client of its own instead and closes
// that client's socket when the context ends: the server then drops the
// blocked read, and an entry it delivered at that very moment stays
// pending for the node until a fetch of the node with RecoverReads or the
// 5-minute idle reclaim (see docs/redis-layout.md, "Work streams"). This needs a *redis.Client under
// the Store (not a cluster or ring client); otherwise Read waits out Block,
// as ReadWork does. A WorkReader is not safe for concurrent use; Close it
// when done.
type WorkReader struct {
	s    *Store
	base *redis.Client
	conn *redis.Conn
	id   int64 // the connection's CLIENT ID; 0 when unknown
	// tried is set once CLIENT ID was asked (and failed or succeeded) on
	// the current connection.
	tried bool
	// own is the reader's own client once CLIENT ID was refused, and socks
	// its open sockets (closed to cut a read short: the pool may dial more
	// than one, a probe among them).
	own   *redis.Client
	mu    sync.Mutex
	socks map[*readerSocket]struct{}
}

// readerSocket is a socket of a WorkReader's own client; it leaves the
// reader's set when closed.
type readerSocket struct {
	net.Conn
	r    *WorkReader
	once sync.Once
}

func (c *readerSocket) Close() error {
	c.once.Do(func() {
		c.r.mu.Lock()
		delete(c.r.socks, c)
		c.r.mu.Unlock()
	})
	return c.Conn.Close()
}

// NewWorkReader returns a WorkReader of s.
func (s *Store) NewWorkReader() *WorkReader {
	r := &WorkReader{s: s}
	if sr, ok := s.rdb.(scriptRunner); ok {
		if c, ok := sr.UniversalClient.(*redis.Client); ok {
			r.base = c
			r.conn = c.Conn()
		}
	}
	return r
}

// Read is ReadWork, cut short when ctx ends (see WorkReader).
func (r *WorkReader) Read(ctx context.Context, req ReadWorkRequest) ([]ReadEntry, error) {
	if r.conn == nil {
		return r.s.ReadWork(ctx, req)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if r.own != nil {
		return r.readOwn(ctx, req)
	}
	if !r.tried {
		r.tried = true
		if id, err := r.conn.ClientID(ctx).Result(); err == nil {
			r.id = id
		} else if refused(err) {
			r.startOwn()
			return r.readOwn(ctx, req)
		}
	}
	if r.id != 0 {
		id := r.id
		stop := context.AfterFunc(ctx, func() {
			_ = r.s.rdb.ClientUnblock(context.Background(), id).Err()
		})
		defer stop()
	}
	entries, err := r.s.readWork(context.WithoutCancel(ctx), r.conn, req)
	if err != nil {
		// The connection may have been replaced: ask its id again.
		r.tried, r.id = false, 0
	}
	return entries, err
}

// refused reports whether err is the server's refusal of a command (an
// error reply: unknown command, no permission), not a failure to reach it.
func refused(err error) bool {
	var re redis.Error
	return errors.As(err, &re)
}

// startOwn makes the reader read on a client of its own, whose sockets it
// records so that a read can be cut short by closing them.
func (r *WorkReader) startOwn() {
	o := *r.base.Options()
	dial := o.Dialer
	o.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		rc := &readerSocket{Conn: c, r: r}
		r.mu.Lock()
		r.socks[rc] = struct{}{}
		r.mu.Unlock()
		return rc, nil
	}
	r.socks = map[*readerSocket]struct{}{}
	// No retries: a read cut short must fail, not be sent again on a new
	// socket.
	o.PoolSize, o.MinIdleConns, o.MaxIdleConns, o.MaxRetries = 1, 0, 1, -1
	r.own = redis.NewClient(&o)
}

// readOwn reads on the reader's own client and closes its socket when ctx
// ends during the read.
func (r *WorkReader) readOwn(ctx context.Context, req ReadWorkRequest) ([]ReadEntry, error) {
	stop := context.AfterFunc(ctx, func() {
		r.mu.Lock()
		open := make([]*readerSocket, 0, len(r.socks))
		for c := range r.socks {
			open = append(open, c)
		}
		r.mu.Unlock()
		for _, c := range open {
			_ = c.Close()
		}
	})
	defer stop()
	entries, err := r.s.readWork(context.WithoutCancel(ctx), r.own, req)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return entries, err
}

// Close releases the reader's connection.
func (r *WorkReader) Close() error {
	if r.conn == nil {
		return nil
	}
	if r.own != nil {
		_ = r.own.Close()
	}
	return r.conn.Close()
}

// AckWork completes a work item: it deletes the item and, if completion is
// not empty, delivers it to the item's instance like Enqueue (dropped if the
// instance is missing or ended). It returns ErrLockLost when token is not the
// current lock and ErrWorkNotFound when the item is gone, which is also what
// a retry of an ack that already succeeded gets.
func (s *Store) AckWork(ctx context.Context, id, token, completion string) error {
	return s.ackWork_(ctx, id, token, completion, nil)
}

// AckWorkPoisoned is AckWork for an activity that exceeded its attempts: the
// work item is also copied to the dead-letter stream with note, atomically.
func (s *Store) AckWorkPoisoned(ctx context.Context, id, token, completion string, note DeadLetterNote) error {
	return s.ackWork_(ctx, id, token, completion, &note)
}

func (s *Store) ackWork_(ctx context.Context, id, token, completion string, note *DeadLetterNote) error {
	_, err := s.runAckWork(ctx, id, token, completion, note, nil)
	return err
}

// TurnClaim asks AckWorkClaim to lock, for its caller, the turn that the
// completion makes ready (eager dispatch).
type TurnClaim struct {
	// RequestID names the claim like FetchOrchestrationsRequest.RequestID:
	// a resent ack with the same RequestID returns the turn the first run
	// locked. Retries of one ack must reuse it. If empty, a random id is
	// used.
	RequestID string
	// CacheOwner is the caller's replay cache owner: the turn is locked
	// only when the instance's history is held by it (its last turn ran
	// there), so the item omits the history like a fetch with this
	// CacheOwner. Empty claims nothing.
	CacheOwner string
	// ReadyBucket is the ready bucket the caller expects the instance in,
	// one it serves; the turn is locked only when the instance waits there.
	ReadyBucket string
	// LockTimeout is how long the lock lasts unless renewed; it must be
	// positive.
	LockTimeout time.Duration
	// NodeID is the worker node that takes the lock.
	NodeID string
	// MaxMessages caps the batch; if zero, 1000 is used.
	MaxMessages int
}

// EagerTurnsMax is the number of consecutive turns of one instance that
// AckWorkClaim locks at most (eager turns): the next one waits in the
// instance's ready bucket for FetchOrchestrations, which resets the count,
// so that eager turns do not starve the instances queued there. It is
// EAGER_TURNS_MAX in common.lua.
const EagerTurnsMax = 8

// AckWorkClaim is AckWork that also locks for the caller, atomically with
// the ack, the instance's next turn when the completion was delivered,
// claim.CacheOwner holds the instance's executor (its cache field), the
// instance waits unlocked and due in claim.ReadyBucket, and fewer than
// EagerTurnsMax of its turns in a row were locked this way. The lock is
// FetchOrchestrations' (Attempts+1, node recorded, same item shape, history
// omitted); the instance is then not announced on the wake-up channel. It
// returns the locked turn, or nil. A resent ack whose first run locked a
// turn (same RequestID) returns no error instead of ErrWorkNotFound, and
// that turn again while it is still locked by it (the record of the claim
// lasts as long as its lock timeout).
func (s *Store) AckWorkClaim(ctx context.Context, id, token, completion string, claim TurnClaim) (*OrchestrationItem, error) {
	c, err := s.prepareWorkAck(id, token, completion, claim)
	if err != nil {
		return nil, err
	}
	r := c.run(ctx, s)
	return r.Turn, r.Err
}

// runAckWork runs ack_work.lua, with a turn claim when claim is not nil,
// and returns its raw reply.
func (s *Store) runAckWork(ctx context.Context, id, token, completion string, note *DeadLetterNote, claim *TurnClaim) (any, error) {
	keys, args := s.ackWorkArgs(id, token, completion, note, claim)
	raw, err := s.ackWork.Run(ctx, s.rdb, keys, args...).Result()
	if err != nil {
		return nil, fmt.Errorf("acking work %s: %w", id, mapScriptError(err))
	}
	return raw, nil
}

// ackWorkArgs returns the KEYS and ARGV of an ack_work.lua call, with a
// turn claim when claim is not nil.
func (s *Store) ackWorkArgs(id, token, completion string, note *DeadLetterNote, claim *TurnClaim) ([]string, []any) {
	k := s.keys
	keys := []string{k.Prefix(), k.WorkItemKey(id)}
	args := []any{id, token, completion}
	if note != nil {
		args = append(args, "1", note.Reason, note.Attempts, note.MaxAttempts)
	}
	if claim != nil {
		if note == nil {
			args = append(args, "", "", "", "")
		}
		keys = append(keys, k.fetchOrchRequestKey(claim.RequestID))
		args = append(args, claim.RequestID, claim.CacheOwner, claim.ReadyBucket, millis(claim.LockTimeout), claim.NodeID, claim.MaxMessages)
	}
	return keys, args
}

// AbandonWork releases a work item lock; the item becomes fetchable again
// after delay. With keepAttempt false the fetch is not counted (Attempts-1,
// minimum 0). It returns ErrLockLost or ErrWorkNotFound.
func (s *Store) AbandonWork(ctx context.Context, id, token string, delay time.Duration, keepAttempt bool) error {
	k := s.keys
	keep := "0"
	if keepAttempt {
		keep = "1"
	}
	err := s.abandonWork.Run(ctx, s.rdb, []string{k.Prefix(), k.WorkItemKey(id)}, id, token, millis(delay), keep).Err()
	if err != nil {
		return fmt.Errorf("abandoning work %s: %w", id, mapScriptError(err))
	}
	return nil
}

// RenewWork moves a work item's lock deadline to now+lockTimeout. It never
// changes Attempts. It returns ErrLockLost when token is not the current lock
// or the lock has already expired, and ErrWorkNotFound.
func (s *Store) RenewWork(ctx context.Context, id, token string, lockTimeout time.Duration) error {
	if lockTimeout <= 0 {
		return fmt.Errorf("renewing work %s: lock timeout must be positive, got %v", id, lockTimeout)
	}
	k := s.keys
	err := s.renewWork.Run(ctx, s.rdb, []string{k.Prefix(), k.WorkItemKey(id)}, id, token, millis(lockTimeout)).Err()
	if err != nil {
		return fmt.Errorf("renewing work %s: %w", id, mapScriptError(err))
	}
	return nil
}
