package queue

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duroworker/duroworker/internal/redistest"
	"github.com/duroworker/duroworker/queue/internal/storetest"
	"github.com/redis/go-redis/v9"
)

// longLock is a lock timeout no test outlives by accident.
const longLock = time.Minute

// env is one test's store on one backend, with a clock that tests move
// explicitly on miniredis and that runs by itself on a real server.
type env struct {
	t   *testing.T
	ctx context.Context
	rdb *redis.Client
	b   redistest.Backend
	s   *Store
	k   Keys
	now time.Time // miniredis only: the time Lua's TIME returns
}

// forEach runs fn on miniredis and on a real redis-server.
func forEach(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Helper()
	redistest.ForEachBackend(t, func(t *testing.T, rdb *redis.Client, b redistest.Backend) {
		e := &env{t: t, ctx: context.Background(), rdb: rdb, b: b, s: New(rdb, Options{})}
		e.k = e.s.Keys()
		if !b.Real {
			e.now = time.UnixMilli(1_700_000_000_000)
			b.Mini.SetTime(e.now)
		}
		fn(t, e)
	})
}

// shortLock is a lock timeout that expiry tests wait out: on miniredis the
// clock is moved past it, on a real server it passes by itself.
func (e *env) shortLock() time.Duration {
	if e.b.Real {
		return 200 * time.Millisecond
	}
	return 30 * time.Second
}

// serverNow returns the server's clock.
func (e *env) serverNow() time.Time {
	e.t.Helper()
	now, err := e.rdb.Time(e.ctx).Result()
	if err != nil {
		e.t.Fatalf("TIME: %v", err)
	}
	return now
}

// advance moves the miniredis clock by d; it does nothing on a real server.
func (e *env) advance(d time.Duration) {
	if !e.b.Real {
		e.now = e.now.Add(d)
		e.b.Mini.SetTime(e.now)
	}
}

// after lets d pass and then requires cond: on miniredis it moves the clock
// by d and checks cond once; on a real server it polls cond until it holds,
// failing after d plus a generous margin.
func (e *env) after(d time.Duration, what string, cond func() bool) {
	e.t.Helper()
	var advance func(time.Duration)
	if !e.b.Real {
		advance = e.advance
	}
	storetest.After(e.t, d, advance, what, cond)
}

func (e *env) create(id, bucket, msg string) {
	e.t.Helper()
	if err := e.s.CreateInstance(e.ctx, CreateRequest{InstanceID: id, Name: "billing", Bucket: bucket, Message: msg}); err != nil {
		e.t.Fatalf("CreateInstance(%s): %v", id, err)
	}
}

func (e *env) enqueue(id, msg string) {
	e.t.Helper()
	if err := e.s.Enqueue(e.ctx, id, msg); err != nil {
		e.t.Fatalf("Enqueue(%s): %v", id, err)
	}
}

// reqSeq numbers the request ids of test fetches.
var reqSeq atomic.Int64

// newReqID returns a fresh request id for a test fetch.
func newReqID() string { return fmt.Sprintf("req%d", reqSeq.Add(1)) }

// fetch runs FetchOrchestrations with a fresh request id and defaults.
func (e *env) fetch(req FetchOrchestrationsRequest) FetchOrchestrationsResult {
	e.t.Helper()
	storetest.FetchDefaults(&req.RequestID, &req.Max, &req.LockTimeout, newReqID, longLock)
	res, err := e.s.FetchOrchestrations(e.ctx, req)
	if err != nil {
		e.t.Fatalf("FetchOrchestrations: %v", err)
	}
	return res
}

// fetchOne fetches from bucket and requires exactly one item.
func (e *env) fetchOne(bucket string, lock time.Duration) OrchestrationItem {
	e.t.Helper()
	res := e.fetch(FetchOrchestrationsRequest{Buckets: []string{bucket}, LockTimeout: lock})
	if len(res.Items) != 1 {
		e.t.Fatalf("fetch from %s: got %d items, want 1", bucket, len(res.Items))
	}
	return res.Items[0]
}

// fetchNone fetches from bucket and requires no item.
func (e *env) fetchNone(bucket string) FetchOrchestrationsResult {
	e.t.Helper()
	res := e.fetch(FetchOrchestrationsRequest{Buckets: []string{bucket}})
	if len(res.Items) != 0 {
		e.t.Fatalf("fetch from %s: got %d items (%s), want none", bucket, len(res.Items), res.Items[0].InstanceID)
	}
	return res
}

// fetchCount fetches from bucket and returns the number of items.
func (e *env) fetchCount(bucket string, lock time.Duration) []OrchestrationItem {
	e.t.Helper()
	return e.fetch(FetchOrchestrationsRequest{Buckets: []string{bucket}, LockTimeout: lock}).Items
}

func (e *env) ack(a OrchestrationAck) {
	e.t.Helper()
	if a.Status == "" {
		a.Status = StatusRunning
	}
	if a.ExecutionID == 0 {
		a.ExecutionID = 1
	}
	if err := e.s.AckOrchestration(e.ctx, a); err != nil {
		e.t.Fatalf("AckOrchestration(%s): %v", a.InstanceID, err)
	}
}

func (e *env) instance(id string) InstanceRecord {
	e.t.Helper()
	r, err := e.s.Instance(e.ctx, id)
	if err != nil {
		e.t.Fatalf("Instance(%s): %v", id, err)
	}
	return r
}

func (e *env) history(id string, exec uint64) []string {
	e.t.Helper()
	h, err := e.s.History(e.ctx, id, exec)
	if err != nil {
		e.t.Fatalf("History(%s, %d): %v", id, exec, err)
	}
	return h
}

func (e *env) lrange(key string) []string {
	e.t.Helper()
	v, err := e.rdb.LRange(e.ctx, key, 0, -1).Result()
	if err != nil {
		e.t.Fatalf("LRANGE %s: %v", key, err)
	}
	return v
}

// zscore returns the score of member in key and whether it is there.
func (e *env) zscore(key, member string) (float64, bool) {
	e.t.Helper()
	v, err := e.rdb.ZScore(e.ctx, key, member).Result()
	if errors.Is(err, redis.Nil) {
		return 0, false
	}
	if err != nil {
		e.t.Fatalf("ZSCORE %s %s: %v", key, member, err)
	}
	return v, true
}

func (e *env) exists(key string) bool {
	e.t.Helper()
	n, err := e.rdb.Exists(e.ctx, key).Result()
	if err != nil {
		e.t.Fatalf("EXISTS %s: %v", key, err)
	}
	return n == 1
}

// wantErr fails unless errors.Is(err, want) (want nil means no error).
var wantErr = storetest.WantErr

// wantEqual fails with both values unless got equals want.
func wantEqual[T any](t *testing.T, what string, want, got T) {
	t.Helper()
	storetest.WantEqual(t, what, want, got)
}

// receive waits for one pub/sub message on ps.
func receive(t *testing.T, ps *redis.PubSub) *redis.Message {
	t.Helper()
	select {
	case m := <-ps.Channel():
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no pub/sub message within 5s")
		return nil
	}
}

// subscribe subscribes and waits for the subscription to be active.
func (e *env) subscribe(channels ...string) *redis.PubSub {
	e.t.Helper()
	ps := e.s.Subscribe(e.ctx, channels...)
	e.t.Cleanup(func() { _ = ps.Close() })
	if _, err := ps.Receive(e.ctx); err != nil {
		e.t.Fatalf("subscribe: %v", err)
	}
	return ps
}

func redisZ(score float64, member string) redis.Z { return redis.Z{Score: score, Member: member} }
