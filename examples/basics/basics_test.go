package basics_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/examples/basics"
	"github.com/duroworker/duroworker/queue"
	"github.com/duroworker/duroworker/worker"
)

func setup(t *testing.T) *client.Client {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	store := queue.New(rdb, queue.Options{Prefix: "basics"})
	orchs := engine.NewOrchestrationRegistry()
	basics.Register(orchs)
	acts := engine.NewActivityRegistry()
	basics.Activities(acts)
	w, err := worker.New(store, orchs.MustBuild(), acts.MustBuild(), worker.Options{
		NodeID:       "basics-test",
		BlockTimeout: 200 * time.Millisecond,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := client.New(store)
	t.Cleanup(func() {
		_ = c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = w.Shutdown(ctx)
	})
	return c
}

func wait(t *testing.T, c *client.Client, id string) client.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := c.Wait(ctx, id)
	if err != nil {
		t.Fatalf("wait %s: %v", id, err)
	}
	return st
}

func TestApproval(t *testing.T) {
	c := setup(t)
	ctx := context.Background()
	if err := c.StartTyped(ctx, "approve-me", basics.ApprovalName, basics.ApprovalInput{TimeoutMS: 10_000}); err != nil {
		t.Fatal(err)
	}
	if err := c.StartTyped(ctx, "forget-me", basics.ApprovalName, basics.ApprovalInput{TimeoutMS: 200}); err != nil {
		t.Fatal(err)
	}
	// The subscription is made in the first turn: raise once Running.
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := c.Status(ctx, "approve-me")
		if err != nil {
			t.Fatal(err)
		}
		if st.State == client.StateRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("approve-me not running: %+v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := c.RaiseEvent(ctx, "approve-me", basics.ApproveEvent, "alice"); err != nil {
		t.Fatal(err)
	}
	if st := wait(t, c, "approve-me"); st.State != client.StateCompleted || st.Output != basics.Approved {
		t.Fatalf("approve-me: %+v", st)
	}
	if st := wait(t, c, "forget-me"); st.State != client.StateCompleted || st.Output != basics.TimedOut {
		t.Fatalf("forget-me: %+v", st)
	}
}

func TestFanOutRejectsNegative(t *testing.T) {
	c := setup(t)
	if err := c.StartTyped(context.Background(), "neg", basics.FanOutName, -1); err != nil {
		t.Fatal(err)
	}
	if st := wait(t, c, "neg"); st.State != client.StateFailed || st.Failure == nil {
		t.Fatalf("status %+v", st)
	}
}

func TestFanOutZero(t *testing.T) {
	c := setup(t)
	if err := c.StartTyped(context.Background(), "zero", basics.FanOutName, 0); err != nil {
		t.Fatal(err)
	}
	if st := wait(t, c, "zero"); st.State != client.StateCompleted || st.Output != "0" {
		t.Fatalf("status %+v", st)
	}
}
