package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/internal/redistest"
	"github.com/duroworker/duroworker/internal/replay"
	"github.com/duroworker/duroworker/queue"
)

// readCounter counts the round trips of a connection and the HGETALLs
// (instance reads) they carry.
type readCounter struct {
	roundTrips, hgetalls atomic.Int64
}

func (r *readCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *readCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		r.count([]redis.Cmder{cmd})
		return next(ctx, cmd)
	}
}

func (r *readCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		r.count(cmds)
		return next(ctx, cmds)
	}
}

func (r *readCounter) count(cmds []redis.Cmder) {
	reads := 0
	for _, c := range cmds {
		if strings.EqualFold(c.Name(), "hgetall") {
			reads++
		}
	}
	if reads > 0 {
		r.roundTrips.Add(1)
		r.hgetalls.Add(int64(reads))
	}
}

// end acks the first turn of id (created alone in bucket "o:<id>") with
// status Completed or Failed, which publishes the end.
func end(t *testing.T, s *queue.Store, id, status string) {
	t.Helper()
	out := "out-" + id
	if status == queue.StatusFailed {
		out = `{"category":"application","kind":"k","message":"broke"}`
	}
	turn(t, s, id, queue.OrchestrationAck{Status: status, Output: out,
		NewEvents: []string{event(t, 1, replay.EventOrchestrationStarted), event(t, 2, replay.EventOrchestrationCompleted)}})
}

func create(t *testing.T, s *queue.Store, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if err := s.CreateInstance(context.Background(), queue.CreateRequest{InstanceID: id, Name: "n", Bucket: "o:" + id, Message: "start"}); err != nil {
			t.Fatal(err)
		}
	}
}

type waited struct {
	st  Status
	err error
}

// collect runs WaitMany in a goroutine and sends what it yields.
func collect(ctx context.Context, c *Client, ids []string) <-chan waited {
	ch := make(chan waited, len(ids)+1)
	go func() {
		defer close(ch)
		for st, err := range c.WaitMany(ctx, ids) {
			ch <- waited{st, err}
		}
	}()
	return ch
}

func next(t *testing.T, ch <-chan waited) waited {
	t.Helper()
	select {
	case w, ok := <-ch:
		if !ok {
			t.Fatal("WaitMany stopped early")
		}
		return w
	case <-time.After(30 * time.Second):
		t.Fatal("WaitMany yielded nothing in 30 s")
	}
	return waited{}
}

// TestWaitMany: WaitMany yields every instance once, the ended ones first,
// a missing one with ErrInstanceNotFound, the others as they end; it reads
// the statuses in one pipelined round trip up front and then each instance
// once, when its end is published (not twice per instance, as a loop of
// Wait calls does).
func TestWaitMany(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb *redis.Client, b redistest.Backend) {
		ctx := context.Background()
		addr := rdb.Options().Addr
		counted := redis.NewClient(&redis.Options{Addr: addr})
		defer counted.Close()
		reads := &readCounter{}
		counted.AddHook(reads)
		c := New(queue.New(counted, queue.Options{}))
		defer c.Close()
		c.waiter.recheck = time.Hour // no safety-net reads during the test
		s := queue.New(rdb, queue.Options{})

		var ids []string
		for i := range 10 {
			ids = append(ids, fmt.Sprintf("i%d", i))
		}
		create(t, s, ids...)
		end(t, s, "i0", queue.StatusCompleted)
		end(t, s, "i1", queue.StatusFailed)
		end(t, s, "i2", queue.StatusCompleted)
		if err := c.Ready(ctx); err != nil {
			t.Fatal(err)
		}
		reads.roundTrips.Store(0)
		reads.hgetalls.Store(0)

		ch := collect(ctx, c, append(append([]string{}, ids...), "nope", "i3"))
		for _, want := range []string{"i0", "i1", "i2"} {
			w := next(t, ch)
			if w.err != nil || w.st.InstanceID != want || !w.st.State.Ended() {
				t.Fatalf("yielded %+v %v, want %s ended", w.st, w.err, want)
			}
			if want == "i1" && (w.st.State != StateFailed || w.st.Failure == nil || w.st.Failure.Message != "broke") {
				t.Errorf("i1: %+v", w.st)
			}
			if want == "i0" && (w.st.State != StateCompleted || w.st.Output != "out-i0") {
				t.Errorf("i0: %+v", w.st)
			}
		}
		if w := next(t, ch); !errors.Is(w.err, ErrInstanceNotFound) || w.st.InstanceID != "nope" || w.st.State != StateNotFound {
			t.Fatalf("missing instance: %+v %v", w.st, w.err)
		}
		for _, id := range ids[3:] {
			end(t, s, id, queue.StatusCompleted)
			if w := next(t, ch); w.err != nil || w.st.InstanceID != id || w.st.State != StateCompleted || w.st.Output != "out-"+id {
				t.Fatalf("after ending %s: %+v %v", id, w.st, w.err)
			}
		}
		if w, ok := <-ch; ok {
			t.Fatalf("yielded after the last instance: %+v %v", w.st, w.err)
		}
		// 11 reads up front in one round trip, then one per end (7).
		if n, rt := reads.hgetalls.Load(), reads.roundTrips.Load(); n != 11+7 || rt > 1+7 {
			t.Errorf("%d instance reads in %d round trips, want 18 in at most 8", n, rt)
		}
		c.waiter.mu.Lock()
		left := len(c.waiter.watches)
		c.waiter.mu.Unlock()
		if left != 0 {
			t.Errorf("%d instances still watched after WaitMany returned", left)
		}
	})
}

// TestWaitManyStops: leaving the loop early unregisters the wait, and the
// end of ctx is yielded as an error.
func TestWaitManyStops(t *testing.T) {
	c, s := newTestClient(t)
	create(t, s, "a", "b")
	end(t, s, "a", queue.StatusCompleted)
	for st, err := range c.WaitMany(context.Background(), []string{"a", "b"}) {
		if err != nil || st.InstanceID != "a" {
			t.Fatalf("yielded %+v %v", st, err)
		}
		break
	}
	c.waiter.mu.Lock()
	left := len(c.waiter.watches)
	c.waiter.mu.Unlock()
	if left != 0 {
		t.Errorf("%d instances still watched after the loop was left", left)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	var got []waited
	for st, err := range c.WaitMany(ctx, []string{"b"}) {
		got = append(got, waited{st, err})
	}
	if len(got) != 1 || !errors.Is(got[0].err, context.DeadlineExceeded) || got[0].st.InstanceID != "" {
		t.Fatalf("yielded %+v, want one error for the deadline", got)
	}
	for range c.WaitMany(ctx, nil) {
		t.Fatal("WaitMany of no instances yielded")
	}
}

// TestWaitManyAcrossRedisRestart: on a real redis-server, Ready returns
// once Redis confirms the subscription; when Redis restarts, Ready blocks
// until the client has subscribed again, and an end the client was never
// told about (here written without a publication, as one published while
// the subscription was down would be) is found by the re-read that
// follows the new subscription, not by the periodic safety net (disabled).
func TestWaitManyAcrossRedisRestart(t *testing.T) {
	srv := redistest.StartWith(t, redistest.Config{AppendOnly: true, AppendFsync: "always"})
	rdb := srv.Client(t)
	ctx := context.Background()
	s := queue.New(rdb, queue.Options{})
	c := New(queue.New(srv.Client(t), queue.Options{}))
	defer c.Close()
	c.waiter.recheck = time.Hour
	create(t, s, "a", "b")

	if err := c.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	if n := rdb.PubSubNumSub(ctx, "{dw}:ended").Val()["{dw}:ended"]; n != 1 {
		t.Fatalf("Ready returned with %d subscribers to {dw}:ended, want 1", n)
	}
	ch := collect(ctx, c, []string{"a", "b"})
	end(t, s, "a", queue.StatusCompleted)
	if w := next(t, ch); w.err != nil || w.st.InstanceID != "a" {
		t.Fatalf("yielded %+v %v, want a", w.st, w.err)
	}

	// b ends without a publication the client could see.
	if err := rdb.HSet(ctx, "{dw}:inst:b", "status", "Completed", "out", "done").Err(); err != nil {
		t.Fatal(err)
	}
	srv.Stop(t)
	eventually(t, "Ready to block while Redis is down", func() bool {
		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		return errors.Is(c.Ready(short), context.DeadlineExceeded)
	})
	srv.Restart(t)
	if w := next(t, ch); w.err != nil || w.st.InstanceID != "b" || w.st.State != StateCompleted || w.st.Output != "done" {
		t.Fatalf("after the restart: %+v %v, want b Completed", w.st, w.err)
	}
	readyCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := c.Ready(readyCtx); err != nil {
		t.Fatalf("Ready after the restart: %v", err)
	}
	if n := rdb.PubSubNumSub(ctx, "{dw}:ended").Val()["{dw}:ended"]; n != 1 {
		t.Fatalf("%d subscribers to {dw}:ended after the restart, want 1", n)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Ready(ctx); err == nil {
		t.Error("Ready after Close returned nil")
	}
}

// TestResubscriptionRereadsEveryStatus: when the subscription is confirmed
// again (after Redis restarted or the connection failed), every waiter
// reads its statuses again, so an end published while the client was not
// subscribed is not missed. The periodic safety net is disabled.
func TestResubscriptionRereadsEveryStatus(t *testing.T) {
	_, rdb := redistest.StartMini(t)
	c := New(queue.New(rdb, queue.Options{}))
	defer c.Close()
	c.waiter.recheck = time.Hour
	ctx := context.Background()
	s := queue.New(rdb, queue.Options{})
	create(t, s, "a", "b")
	if err := c.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	ch := collect(ctx, c, []string{"b"})
	waitC := make(chan waited, 1)
	go func() {
		st, err := c.Wait(ctx, "a")
		waitC <- waited{st, err}
	}()
	eventually(t, "both waits to watch", func() bool {
		c.waiter.mu.Lock()
		defer c.waiter.mu.Unlock()
		return len(c.waiter.watches) == 2
	})
	// Both end while the client is (as far as it knows) not subscribed.
	rdb.HSet(ctx, "{dw}:inst:a", "status", "Completed", "out", "A")
	rdb.HSet(ctx, "{dw}:inst:b", "status", "Failed", "out", "B")
	c.waiter.handle(&redis.Subscription{Kind: "subscribe", Channel: "{dw}:ended", Count: 1})
	if w := next(t, ch); w.err != nil || w.st.InstanceID != "b" || w.st.State != StateFailed {
		t.Fatalf("WaitMany after the resubscription: %+v %v", w.st, w.err)
	}
	select {
	case w := <-waitC:
		if w.err != nil || w.st.State != StateCompleted || w.st.Output != "A" {
			t.Fatalf("Wait after the resubscription: %+v %v", w.st, w.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Wait did not re-read the status after the resubscription")
	}
}

// TestWaitManyRetriesStoreErrors: while the store fails, WaitMany retries
// its reads; notifications that arrive meanwhile do not make it yield an
// instance twice.
func TestWaitManyRetriesStoreErrors(t *testing.T) {
	m, rdb := redistest.StartMini(t)
	c := New(queue.New(rdb, queue.Options{}))
	defer c.Close()
	c.waiter.recheck = time.Hour
	ctx := context.Background()
	create(t, queue.New(rdb, queue.Options{}), "a", "b")
	if err := c.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	ch := collect(ctx, c, []string{"b"})
	eventually(t, "WaitMany to watch b", func() bool {
		c.waiter.mu.Lock()
		defer c.waiter.mu.Unlock()
		return len(c.waiter.watches) == 1
	})
	rdb.HSet(ctx, "{dw}:inst:b", "status", "Completed", "out", "B")
	m.SetError("LOADING Redis is loading the dataset in memory")
	c.waiter.notify("b")
	time.Sleep(200 * time.Millisecond) // reads fail and are retried
	c.waiter.notify("b")
	time.Sleep(200 * time.Millisecond)
	m.SetError("")
	if w := next(t, ch); w.err != nil || w.st.InstanceID != "b" || w.st.Output != "B" {
		t.Fatalf("yielded %+v %v, want b", w.st, w.err)
	}
	if w, ok := <-ch; ok {
		t.Fatalf("yielded again: %+v %v", w.st, w.err)
	}
}
