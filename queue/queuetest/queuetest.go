// Package queuetest is the conformance suite of duroworker's store, the
// Redis-backed *queue.Store: the contract that the engine and the workers
// rely on, written once and run against every backend the store may be
// deployed on.
//
// It follows the categories of upstream duroxide's provider validation
// suite (src/provider_validation: atomicity, instance locking, lock
// expiration, queue semantics, poison messages, capability filtering,
// sessions, tags, cancellation, multi-execution, instance creation,
// management, deletion, bulk deletion, prune, custom status, key-value
// state, long polling, error handling), plus node liveness (the locks of
// a dead worker node are reclaimed before their deadline), adapted to what the store does
// differently: capability filtering is routing by bucket, tags are
// separate buckets, lock stealing is fenced by tokens, and time comes from
// the Redis server clock. Every case starts from a fresh, empty store and
// drives it through its exported API only (plus pub/sub through
// Store.Subscribe), so it holds for any Redis-compatible server, topology or
// store configuration that claims to support queue.Store.
//
// # Running it
//
// A backend provides a Factory and calls Run from a test:
//
//	func TestConformance(t *testing.T) {
//		srv := redistest.Start(t) // or a cluster, Valkey, a proxy, ...
//		rdb := srv.Client(t)
//		var n atomic.Int64
//		queuetest.Run(t, queuetest.Factory{
//			Name: "redis",
//			Real: true,
//			New: func(t *testing.T) *queue.Store {
//				return queue.New(rdb, queue.Options{Prefix: fmt.Sprintf("conf%d", n.Add(1))})
//			},
//			FlushScripts: func(t *testing.T) { rdb.ScriptFlush(context.Background()) },
//		})
//	}
//
// New must return a store whose namespace is empty; a unique prefix on a
// shared server is enough, since every key and channel of a store lives
// under its prefix. Advance, when set, moves the server clock that Lua's
// TIME returns (miniredis: SetTime, plus FastForward for key expiry); the
// suite then uses long lock timeouts and moves time explicitly, which makes
// the cases deterministic. Without Advance the suite waits in real time
// with short locks (200 ms) and bounded polling loops, never asserting how
// long something took. Real says the backend is a real Redis server; cases
// that a fake cannot support are skipped on a backend that is not, with the
// reason. FlushScripts, when set, empties the server's script cache, for the
// case that checks recovery from NOSCRIPT.
//
// Cases run one after the other (they share the Factory's clock). A case
// that finds a store bug it cannot assert around is skipped with a
// "BUG: ..." reason, so that the suite documents known defects.
package queuetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duroworker/duroworker/queue"
	"github.com/duroworker/duroworker/queue/internal/storetest"
	"github.com/redis/go-redis/v9"
)

// Factory gives each case a fresh, empty store and a way to control time
// where the backend allows it.
type Factory struct {
	// Name names the backend in messages.
	Name string
	// New returns a store with an empty namespace (a unique prefix on a
	// shared server is fine). It is called once per case.
	New func(t *testing.T) *queue.Store
	// Real is true for a real Redis server. When false (miniredis), cases
	// that need real server behaviour are skipped with the reason.
	Real bool
	// Advance, when not nil, moves the server clock (the time Lua's TIME
	// returns, and key expiry) forward by d. When nil, the suite lets real
	// time pass, with short locks and deadlines.
	Advance func(t *testing.T, d time.Duration)
	// FlushScripts, when not nil, empties the server's Lua script cache
	// (SCRIPT FLUSH), as a restart or a failover does.
	FlushScripts func(t *testing.T)
}

// testCase is one conformance case.
type testCase struct {
	name string
	run  func(e *env)
}

// category is a group of cases, named like upstream's validation modules.
type category struct {
	name string
	// upstream is the number of tests in upstream's module of the same
	// subject (duroxide 0.1.29, src/provider_validation).
	upstream int
	cases    []testCase
}

// categories lists the suite in the order Run runs it.
func categories() []category {
	return []category{
		{"atomicity", 4, atomicityCases},
		{"instance_locking", 11, lockingCases},
		{"lock_expiration", 13, expiryCases},
		{"queue_semantics", 8, semanticsCases},
		{"poison", 9, poisonCases},
		{"capability_filtering", 20, capabilityCases},
		{"sessions", 33, sessionCases},
		{"tags", 10, tagCases},
		{"cancellation", 16, cancelCases},
		{"multi_execution", 5, multiExecCases},
		{"instance_creation", 4, creationCases},
		{"management", 13, managementCases},
		{"deletion", 13, deletionCases},
		{"bulk_deletion", 4, bulkDeletionCases},
		{"prune", 4, pruneCases},
		{"custom_status", 7, customStatusCases},
		{"kv", 35, kvCases},
		{"long_polling", 5, longPollCases},
		{"error_handling", 7, errorCases},
		{"node_liveness", 0, nodeCases},
		{"eager_dispatch", 0, eagerCases},
		{"work_streams", 0, streamCases},
	}
}

// Run runs every category as subtests "<category>/<case>" against f.
func Run(t *testing.T, f Factory) {
	t.Helper()
	if f.New == nil {
		t.Fatal("queuetest: Factory.New is required")
	}
	for _, c := range categories() {
		t.Run(c.name, func(t *testing.T) {
			for _, tc := range c.cases {
				t.Run(tc.name, func(t *testing.T) {
					e := newEnv(t, f)
					tc.run(e)
				})
			}
		})
	}
}

// env is one case's store and helpers.
type env struct {
	t   *testing.T
	ctx context.Context
	f   Factory
	s   *queue.Store
	k   queue.Keys
	// virtual is true when the clock is moved by Factory.Advance.
	virtual bool
	seq     atomic.Int64
}

func newEnv(t *testing.T, f Factory) *env {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s := f.New(t)
	if s == nil {
		t.Fatal("queuetest: Factory.New returned nil")
	}
	return &env{t: t, ctx: ctx, f: f, s: s, k: s.Keys(), virtual: f.Advance != nil}
}

// Durations. With a virtual clock they are long (time only moves when the
// case says so); in real time they are short enough to wait out.

// longLock is a lock timeout no case outlives by accident.
const longLock = 5 * time.Minute

// shortLock is a lock timeout that cases wait out to see it expire.
func (e *env) shortLock() time.Duration {
	if e.virtual {
		return 30 * time.Second
	}
	return 200 * time.Millisecond
}

// hide is a delay long enough that checks made right after it was set see
// the entry still hidden, and short enough to wait out in real time.
func (e *env) hide() time.Duration {
	if e.virtual {
		return 30 * time.Second
	}
	return 500 * time.Millisecond
}

// pass lets d go by: Advance on a virtual clock, a sleep otherwise.
func (e *env) pass(d time.Duration) {
	e.t.Helper()
	if e.virtual {
		e.f.Advance(e.t, d)
		return
	}
	time.Sleep(d)
}

// tick makes sure the server clock moves on by at least a millisecond, so
// that two writes get different timestamps.
func (e *env) tick() {
	e.t.Helper()
	if e.virtual {
		e.f.Advance(e.t, time.Millisecond)
		return
	}
	time.Sleep(2 * time.Millisecond)
}

// after lets d pass and then requires cond: with a virtual clock it
// advances by d and checks once; in real time it polls cond until it holds,
// failing after d plus a generous margin.
func (e *env) after(d time.Duration, what string, cond func() bool) {
	e.t.Helper()
	var advance func(time.Duration)
	if e.virtual {
		advance = func(d time.Duration) { e.f.Advance(e.t, d) }
	}
	storetest.After(e.t, d, advance, what, cond)
}

// eventually polls cond until it holds (at most 10 s).
func (e *env) eventually(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("%s did not hold within 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// requireReal skips the case on a backend that is not a real Redis server.
func (e *env) requireReal(why string) {
	e.t.Helper()
	if !e.f.Real {
		e.t.Skipf("%s backend is not a real Redis server: %s", e.f.Name, why)
	}
}

// requireVirtualClock skips the case on a backend whose clock cannot be
// moved on (a real Redis server) when the case must wait out a long time.
func (e *env) requireVirtualClock(why string) {
	e.t.Helper()
	if !e.virtual {
		e.t.Skipf("%s backend runs on real time: %s", e.f.Name, why)
	}
}

// reqID returns a fresh request id.
func (e *env) reqID() string { return fmt.Sprintf("r%d", e.seq.Add(1)) }

// Instances and turns.

func (e *env) create(id, bucket, msg string) {
	e.t.Helper()
	e.must("CreateInstance "+id, e.s.CreateInstance(e.ctx, queue.CreateRequest{InstanceID: id, Name: "orch", Bucket: bucket, Message: msg}))
}

func (e *env) enqueue(id, msg string) {
	e.t.Helper()
	e.must("Enqueue "+id, e.s.Enqueue(e.ctx, id, msg))
}

// fetch runs FetchOrchestrations with defaults for zero fields (Max 10,
// longLock, a fresh request id).
func (e *env) fetch(req queue.FetchOrchestrationsRequest) queue.FetchOrchestrationsResult {
	e.t.Helper()
	storetest.FetchDefaults(&req.RequestID, &req.Max, &req.LockTimeout, e.reqID, longLock)
	res, err := e.s.FetchOrchestrations(e.ctx, req)
	if err != nil {
		e.t.Fatalf("FetchOrchestrations(%v): %v", req.Buckets, err)
	}
	return res
}

// fetchFrom fetches up to 10 instances from buckets with a long lock.
func (e *env) fetchFrom(buckets ...string) []queue.OrchestrationItem {
	e.t.Helper()
	return e.fetch(queue.FetchOrchestrationsRequest{Buckets: buckets}).Items
}

// fetchOne fetches from bucket and requires exactly one item.
func (e *env) fetchOne(bucket string) queue.OrchestrationItem {
	e.t.Helper()
	return e.fetchOneLock(bucket, longLock)
}

func (e *env) fetchOneLock(bucket string, lock time.Duration) queue.OrchestrationItem {
	e.t.Helper()
	items := e.fetch(queue.FetchOrchestrationsRequest{Buckets: []string{bucket}, LockTimeout: lock}).Items
	if len(items) != 1 {
		e.t.Fatalf("fetch from %s: %d items (%v), want 1", bucket, len(items), itemIDs(items))
	}
	return items[0]
}

// fetchNone fetches from buckets and requires nothing.
func (e *env) fetchNone(buckets ...string) queue.FetchOrchestrationsResult {
	e.t.Helper()
	res := e.fetch(queue.FetchOrchestrationsRequest{Buckets: buckets})
	if len(res.Items) != 0 {
		e.t.Fatalf("fetch from %v: got %v, want nothing", buckets, itemIDs(res.Items))
	}
	return res
}

func itemIDs(items []queue.OrchestrationItem) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.InstanceID
	}
	return out
}

// ack commits a turn, defaulting Status to Running and ExecutionID to 1.
func (e *env) ack(a queue.OrchestrationAck) {
	e.t.Helper()
	e.must("AckOrchestration "+a.InstanceID, e.ackErr(a))
}

func (e *env) ackErr(a queue.OrchestrationAck) error {
	if a.Status == "" {
		a.Status = queue.StatusRunning
	}
	if a.ExecutionID == 0 {
		a.ExecutionID = 1
	}
	return e.s.AckOrchestration(e.ctx, a)
}

// start creates id in bucket and acks its first turn (execution 1,
// Running); the instance then waits in bucket with an empty inbox.
func (e *env) start(id, bucket string) {
	e.t.Helper()
	e.create(id, bucket, "start")
	it := e.fetchOne(bucket)
	e.ack(queue.OrchestrationAck{InstanceID: id, Token: it.Token, NewEvents: []string{"started"}})
}

// turn delivers msg to a Running instance, fetches it from its ready
// bucket and returns the item, locked with a long lock.
func (e *env) turn(id, msg string) queue.OrchestrationItem {
	e.t.Helper()
	e.enqueue(id, msg)
	return e.fetchOne(e.instance(id).ReadyBucket)
}

// finish runs a final turn of a Running instance with status (Completed or
// Failed) and output.
func (e *env) finish(id, status, output string) {
	e.t.Helper()
	r := e.instance(id)
	it := e.turn(id, "finish")
	e.ack(queue.OrchestrationAck{InstanceID: id, Token: it.Token, ExecutionID: r.ExecutionID, Status: status, Output: output, NewEvents: []string{"ended"}})
}

// schedule runs a turn of Running instance id (its current execution) that
// creates the work items.
func (e *env) schedule(id string, items ...queue.WorkItem) {
	e.t.Helper()
	r := e.instance(id)
	it := e.turn(id, "schedule")
	e.ack(queue.OrchestrationAck{InstanceID: id, Token: it.Token, ExecutionID: r.ExecutionID, Activities: items})
}

func (e *env) instance(id string) queue.InstanceRecord {
	e.t.Helper()
	r, err := e.s.Instance(e.ctx, id)
	if err != nil {
		e.t.Fatalf("Instance(%s): %v", id, err)
	}
	return r
}

// gone requires that instance id does not exist.
func (e *env) gone(id string) {
	e.t.Helper()
	_, err := e.s.Instance(e.ctx, id)
	wantErr(e.t, "Instance("+id+")", err, queue.ErrInstanceNotFound)
}

func (e *env) history(id string, exec uint64) []string {
	e.t.Helper()
	h, err := e.s.History(e.ctx, id, exec)
	if err != nil {
		e.t.Fatalf("History(%s, %d): %v", id, exec, err)
	}
	if h == nil {
		h = []string{}
	}
	return h
}

// now returns the server clock as seen by an update of instance id (its
// UpdatedAt): the suite reads server time only through the store.
func (e *env) now(id string) time.Time {
	e.t.Helper()
	return e.instance(id).UpdatedAt
}

// Work items.

func (e *env) fetchWork(req queue.FetchWorkRequest) queue.FetchWorkResult {
	e.t.Helper()
	storetest.FetchDefaults(&req.RequestID, &req.Max, &req.LockTimeout, e.reqID, longLock)
	res, err := e.s.FetchWork(e.ctx, req)
	if err != nil {
		e.t.Fatalf("FetchWork(%v): %v", req.Buckets, err)
	}
	return res
}

// work fetches up to 10 items from buckets with a long lock.
func (e *env) work(buckets ...string) []queue.FetchedWork {
	e.t.Helper()
	return e.fetchWork(queue.FetchWorkRequest{Buckets: buckets}).Items
}

func (e *env) workOne(buckets ...string) queue.FetchedWork {
	e.t.Helper()
	return e.workOneLock(longLock, buckets...)
}

func (e *env) workOneLock(lock time.Duration, buckets ...string) queue.FetchedWork {
	e.t.Helper()
	items := e.fetchWork(queue.FetchWorkRequest{Buckets: buckets, LockTimeout: lock}).Items
	if len(items) != 1 {
		e.t.Fatalf("FetchWork(%v): %d items (%v), want 1", buckets, len(items), workBodies(items))
	}
	return items[0]
}

func (e *env) workNone(buckets ...string) {
	e.t.Helper()
	if items := e.work(buckets...); len(items) != 0 {
		e.t.Fatalf("FetchWork(%v): got %v, want nothing", buckets, workBodies(items))
	}
}

func workBodies(items []queue.FetchedWork) []string {
	out := make([]string, len(items))
	for i, w := range items {
		out[i] = w.Body
	}
	return out
}

// peekInbox returns the batch a fetch of id gets, then gives the lock back
// with an abandon that does not count the attempt. It requires id to be the
// only fetchable instance of its ready bucket.
func (e *env) peekInbox(id string) []string {
	e.t.Helper()
	it := e.fetchOne(e.instance(id).ReadyBucket)
	if it.InstanceID != id {
		e.t.Fatalf("peek %s: fetched %s", id, it.InstanceID)
	}
	e.must("AbandonOrchestration", e.s.AbandonOrchestration(e.ctx, id, it.Token, 0, false))
	return it.Messages
}

// Management reads.

func (e *env) metrics() queue.SystemMetrics {
	e.t.Helper()
	m, err := e.s.Metrics(e.ctx)
	e.must("Metrics", err)
	return m
}

func (e *env) depths() queue.QueueDepths {
	e.t.Helper()
	d, err := e.s.QueueDepths(e.ctx)
	e.must("QueueDepths", err)
	return d
}

// depth returns the depth of bucket in list, and whether it is listed.
func depth(list []queue.BucketDepth, bucket string) (queue.BucketDepth, bool) {
	for _, d := range list {
		if d.Bucket == bucket {
			return d, true
		}
	}
	return queue.BucketDepth{}, false
}

func (e *env) timers() int {
	e.t.Helper()
	return e.depths().Timers
}

func (e *env) workBuckets() []string {
	e.t.Helper()
	b, err := e.s.WorkBuckets(e.ctx)
	e.must("WorkBuckets", err)
	return sorted(b)
}

func (e *env) listAll(status string) []string {
	e.t.Helper()
	var out []string
	for off := 0; off >= 0; {
		p, err := e.s.ListInstances(e.ctx, queue.ListOptions{Status: status, Offset: off})
		e.must("ListInstances", err)
		out = append(out, p.InstanceIDs...)
		off = p.NextOffset
	}
	return out
}

// snapshot is what the store's read API says about some instances and the
// namespace; cases compare snapshots to show that a failed call wrote
// nothing.
type snapshot struct {
	Instances  []queue.InstanceRecord
	Histories  map[string][]string
	Executions map[string][]queue.ExecutionRecord
	Children   map[string][]string
	KV         map[string]map[string]queue.KVEntry
	KVStore    map[string]map[string]queue.KVEntry
	Metrics    queue.SystemMetrics
	Depths     queue.QueueDepths
	Work       []string
	Pins       []string
	Listed     []string
}

func (e *env) snap(ids ...string) snapshot {
	e.t.Helper()
	s := snapshot{Histories: map[string][]string{}, Executions: map[string][]queue.ExecutionRecord{},
		Children: map[string][]string{}, KV: map[string]map[string]queue.KVEntry{}, KVStore: map[string]map[string]queue.KVEntry{}}
	var err error
	s.Instances, err = e.s.Instances(e.ctx, ids)
	e.must("Instances", err)
	for _, id := range ids {
		for x := uint64(1); x <= 3; x++ {
			s.Histories[fmt.Sprintf("%s/%d", id, x)] = e.history(id, x)
		}
		if ex, err := e.s.Executions(e.ctx, id); err == nil {
			s.Executions[id] = ex
		}
		if ch, err := e.s.Children(e.ctx, id); err == nil {
			s.Children[id] = ch
		}
		if kv, err := e.s.KVAll(e.ctx, id); err == nil {
			s.KV[id] = kv
		}
		kv, err := e.s.KVCommitted(e.ctx, id)
		e.must("KVCommitted", err)
		s.KVStore[id] = kv
	}
	s.Metrics = e.metrics()
	s.Depths = e.depths()
	s.Work = e.workBuckets()
	s.Pins, err = e.s.EnginePins(e.ctx)
	e.must("EnginePins", err)
	sort.Strings(s.Pins)
	s.Listed = e.listAll("")
	return s
}

// Pub/sub.

// subscribe subscribes to channels and waits until the subscription is active.
func (e *env) subscribe(channels ...string) *redis.PubSub {
	e.t.Helper()
	ps := e.s.Subscribe(e.ctx, channels...)
	e.t.Cleanup(func() { _ = ps.Close() })
	for range channels {
		if _, err := ps.Receive(e.ctx); err != nil {
			e.t.Fatalf("subscribe %v: %v", channels, err)
		}
	}
	return ps
}

// expectMessage waits (at most 5 s) for a message on channel with payload,
// skipping other messages; it returns the payloads skipped.
func (e *env) expectMessage(ps *redis.PubSub, channel, payload string) []string {
	e.t.Helper()
	var skipped []string
	timeout := time.After(5 * time.Second)
	ch := ps.Channel()
	for {
		select {
		case m := <-ch:
			if m.Channel == channel && m.Payload == payload {
				return skipped
			}
			skipped = append(skipped, m.Channel+"="+m.Payload)
		case <-timeout:
			e.t.Fatalf("no message %q on %s within 5s (got %v)", payload, channel, skipped)
			return nil
		}
	}
}

// drain returns the messages that arrive on ps within a short quiet period.
func drain(ps *redis.PubSub) []string {
	var out []string
	ch := ps.Channel()
	for {
		select {
		case m := <-ch:
			out = append(out, m.Channel+"="+m.Payload)
		case <-time.After(100 * time.Millisecond):
			return out
		}
	}
}

// Assertions.

func (e *env) must(what string, err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatalf("%s: %v", what, err)
	}
}

// wantErr fails unless errors.Is(err, want) (want nil: no error).
var wantErr = storetest.WantErr

// wantPlainErr fails unless err is not nil and wraps none of the sentinels
// (validation errors and other non-sentinel failures).
func wantPlainErr(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want one", what)
	}
	for _, s := range sentinels {
		if errors.Is(err, s) {
			t.Fatalf("%s: error %v unexpectedly wraps %v", what, err, s)
		}
	}
}

var sentinels = []error{
	queue.ErrInstanceExists, queue.ErrInstanceNotFound, queue.ErrInstanceEnded, queue.ErrLockLost,
	queue.ErrWorkNotFound, queue.ErrAckTooLarge, queue.ErrInstanceRunning,
	queue.ErrCannotDeleteSubOrchestration, queue.ErrTreeTooLarge,
}

// wantEqual fails with both values unless got equals want.
func wantEqual[T any](t *testing.T, what string, want, got T) {
	t.Helper()
	storetest.WantEqual(t, what, want, got)
}

// wantSame fails unless two snapshots are equal, naming the parts that differ.
func wantSame(t *testing.T, what string, before, after snapshot) {
	t.Helper()
	if reflect.DeepEqual(before, after) {
		return
	}
	var diffs []string
	bv, av := reflect.ValueOf(before), reflect.ValueOf(after)
	for i := range bv.NumField() {
		if !reflect.DeepEqual(bv.Field(i).Interface(), av.Field(i).Interface()) {
			diffs = append(diffs, fmt.Sprintf("%s: before %+v after %+v", bv.Type().Field(i).Name, bv.Field(i).Interface(), av.Field(i).Interface()))
		}
	}
	t.Fatalf("%s changed the store:\n%s", what, strings.Join(diffs, "\n"))
}

func sorted(in []string) []string {
	out := append([]string{}, in...)
	sort.Strings(out)
	return out
}

// wantWake checks a NextWake: exactly exact on a virtual clock (nothing
// moves between the write and the read), in (0, exact] in real time.
func (e *env) wantWake(what string, got, exact time.Duration) {
	e.t.Helper()
	if e.virtual {
		if got != exact {
			e.t.Fatalf("%s = %v, want %v", what, got, exact)
		}
		return
	}
	if got <= 0 || got > exact {
		e.t.Fatalf("%s = %v, want in (0, %v]", what, got, exact)
	}
}

// readWork starts a blocking ReadWork of buckets as node, runs then, and
// returns what the read got (failing after 15 s).
func (e *env) readWork(node string, buckets []string, then func()) []queue.ReadEntry {
	e.t.Helper()
	type result struct {
		r   []queue.ReadEntry
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := e.s.ReadWork(e.ctx, queue.ReadWorkRequest{Buckets: buckets, NodeID: node, Count: 10, Block: 10 * time.Second})
		done <- result{r, err}
	}()
	then()
	select {
	case res := <-done:
		if res.err != nil {
			e.t.Fatalf("ReadWork(%v): %v", buckets, res.err)
		}
		return res.r
	case <-time.After(15 * time.Second):
		e.t.Fatalf("ReadWork(%v) did not return", buckets)
		return nil
	}
}
