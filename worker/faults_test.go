package worker

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/internal/redistest"
	"github.com/duroworker/duroworker/queue"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func echoOrchestrations() *engine.OrchestrationRegistry {
	return engine.NewOrchestrationRegistry().Register("Echo", func(ctx *engine.OrchestrationContext, in string) (string, error) {
		return in, nil
	}).MustBuild()
}

// TestStartRefusesAUserWithoutChannelPermissions: under an ACL that allows
// the keys but no channels, Start fails up front and names the missing
// permission, instead of acks failing after their writes.
func TestStartRefusesAUserWithoutChannelPermissions(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	srv := redistest.Start(t)
	admin := srv.Client(t)
	ctx := context.Background()
	if err := admin.Do(ctx, "ACL", "SETUSER", "nochan", "on", ">pw", "~*", "+@all", "resetchannels").Err(); err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), Username: "nochan", Password: "pw"})
	defer rdb.Close()
	w, err := New(queue.New(rdb, queue.Options{Prefix: "acl"}), echoOrchestrations(), nil, Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	err = w.Start(ctx)
	if err == nil {
		_ = w.Shutdown(ctx)
		t.Fatal("Start succeeded for a user that may not publish or subscribe")
	}
	if !strings.Contains(err.Error(), "PUBLISH") || !strings.Contains(err.Error(), "&{acl}:*") {
		t.Fatalf("Start: %v, want the missing channel permission named", err)
	}

	// With the channels granted, the same user starts and runs work.
	if err := admin.Do(ctx, "ACL", "SETUSER", "nochan", "&{acl}:*").Err(); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	w, err = New(queue.New(rdb, queue.Options{Prefix: "acl"}), echoOrchestrations(), nil, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(ctx); err != nil {
		t.Fatalf("Start with channel permissions: %v", err)
	}
	defer w.Shutdown(ctx)

	// Revoked while it runs: Redis drops the subscription, the worker's
	// resubscription is denied, and that is logged once, as an error.
	const denied = "subscribing to wake-ups is denied by Redis"
	if err := admin.Do(ctx, "ACL", "SETUSER", "nochan", "resetchannels").Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(logs.String(), denied) {
		if time.Now().After(deadline) {
			t.Fatalf("the denied subscription was not logged:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second) // several retry periods
	if n := strings.Count(logs.String(), denied); n != 1 || !strings.Contains(logs.String(), "level=ERROR") {
		t.Fatalf("the denial was logged %d times (want once, as an error):\n%s", n, logs.String())
	}
}

// TestDispatchersResumeWhenRedisReturns: after an outage, the dispatchers
// fetch as soon as the wake-up subscription reconnects, not when their
// error backoff runs out (made an hour long here, so that a dispatcher that
// sleeps it out fails the test).
func TestDispatchersResumeWhenRedisReturns(t *testing.T) {
	if testing.Short() {
		t.Skip("stops and restarts redis-server")
	}
	base, max := errorBackoffBase, errorBackoffMax
	errorBackoffBase, errorBackoffMax = time.Hour, time.Hour
	defer func() { errorBackoffBase, errorBackoffMax = base, max }()

	srv := redistest.StartWith(t, redistest.Config{AppendOnly: true, AppendFsync: "always"})
	rdb := srv.Client(t)
	store := queue.New(rdb, queue.Options{Prefix: "rc"})
	c := client.New(store)
	defer c.Close()
	var logs syncBuffer
	acts := engine.NewActivityRegistry().Register("Echo", func(ctx *engine.ActivityContext, in string) (string, error) {
		return in, nil
	}).MustBuild()
	orchs := engine.NewOrchestrationRegistry().Register("Echo", func(ctx *engine.OrchestrationContext, in string) (string, error) {
		return ctx.ScheduleActivity("Echo", in).Get()
	}).MustBuild()
	w, err := New(store, orchs, acts, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil)), BlockTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_ = w.Shutdown(sctx)
	}()
	wait := func(id string) {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		st, err := c.Wait(wctx, id)
		if err != nil || st.Output != id {
			t.Fatalf("%s: %+v %v", id, st, err)
		}
	}
	if err := c.Start(ctx, "before", "Echo", "before"); err != nil {
		t.Fatal(err)
	}
	wait("before")

	srv.Stop(t)
	deadline := time.Now().Add(30 * time.Second)
	for !(strings.Contains(logs.String(), "fetching orchestrations failed") && strings.Contains(logs.String(), "fetching activities failed")) {
		if time.Now().After(deadline) {
			t.Fatalf("the dispatchers did not see the outage:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	srv.Restart(t)
	for i := 0; i < 3; i++ {
		id := fmt.Sprintf("after-%d", i)
		if err := c.Start(ctx, id, "Echo", id); err != nil {
			t.Fatal(err)
		}
		wait(id)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers (a log sink).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
