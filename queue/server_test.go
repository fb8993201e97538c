package queue

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/duroworker/duroworker/internal/redistest"
)

// TestScriptCacheFlushed: after SCRIPT FLUSH (what a restart or failover does
// to the script cache) every operation still works; go-redis answers NOSCRIPT
// with EVAL. Real server only: miniredis keeps its script cache.
func TestScriptCacheFlushed(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	s := New(rdb, Options{Prefix: "flush"})

	if err := s.CreateInstance(ctx, CreateRequest{InstanceID: "i1", Bucket: "o:b", Message: "start"}); err != nil {
		t.Fatalf("create: %v", err)
	}
	exists, err := rdb.ScriptExists(ctx, s.create.Hash()).Result()
	if err != nil || !exists[0] {
		t.Fatalf("create script not cached after first run: %v %v", exists, err)
	}
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatalf("SCRIPT FLUSH: %v", err)
	}
	// EVALSHA alone now fails with NOSCRIPT...
	err = s.enqueue.EvalSha(ctx, rdb, []string{s.keys.Prefix(), s.keys.InstanceKey("i1")}, "i1", "x").Err()
	if err == nil || !strings.HasPrefix(err.Error(), "NOSCRIPT") {
		t.Fatalf("EVALSHA after flush: err = %v, want NOSCRIPT", err)
	}
	// ...but the Store recovers.
	if err := s.Enqueue(ctx, "i1", "m2"); err != nil {
		t.Fatalf("enqueue after flush: %v", err)
	}
	res, err := s.FetchOrchestrations(ctx, FetchOrchestrationsRequest{Buckets: []string{"o:b"}, Max: 1, LockTimeout: time.Minute})
	if err != nil || len(res.Items) != 1 {
		t.Fatalf("fetch after flush: %+v, %v", res, err)
	}
	wantEqual(t, "batch", []string{"start", "m2"}, res.Items[0].Messages)
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatalf("SCRIPT FLUSH: %v", err)
	}
	// Sentinel errors survive the EVAL fallback.
	err = s.AckOrchestration(ctx, OrchestrationAck{InstanceID: "i1", Token: "wrong", ExecutionID: 1, Status: StatusRunning})
	wantErr(t, "ack with wrong token after flush", err, ErrLockLost)
	if err := s.AckOrchestration(ctx, OrchestrationAck{InstanceID: "i1", Token: res.Items[0].Token, ExecutionID: 1, Status: StatusRunning, NewEvents: []string{"e1"}}); err != nil {
		t.Fatalf("ack after flush: %v", err)
	}
	exists, err = rdb.ScriptExists(ctx, s.ackOrch.Hash()).Result()
	if err != nil || !exists[0] {
		t.Errorf("ack script not cached again after the fallback: %v %v", exists, err)
	}
}

// TestRestartWithAOF: with appendonly yes, instances, locks, work items and
// timers survive a restart, and the lock tokens handed out before it still
// fence acks after it (the script cache is gone, so this also covers NOSCRIPT).
func TestRestartWithAOF(t *testing.T) {
	for _, fsync := range []string{"always", "everysec"} {
		t.Run(fsync, func(t *testing.T) {
			srv := redistest.StartWith(t, redistest.Config{AppendOnly: true, AppendFsync: fsync})
			rdb := srv.Client(t)
			ctx := context.Background()
			s := New(rdb, Options{})

			for _, id := range []string{"i1", "i2"} {
				if err := s.CreateInstance(ctx, CreateRequest{InstanceID: id, Bucket: "o:b", Message: "start"}); err != nil {
					t.Fatalf("create %s: %v", id, err)
				}
			}
			res, err := s.FetchOrchestrations(ctx, FetchOrchestrationsRequest{Buckets: []string{"o:b"}, Max: 1, LockTimeout: time.Minute})
			if err != nil || len(res.Items) != 1 {
				t.Fatalf("fetch: %+v, %v", res, err)
			}
			it := res.Items[0]
			err = s.AckOrchestration(ctx, OrchestrationAck{
				InstanceID: it.InstanceID, Token: it.Token, ExecutionID: 1, Status: StatusRunning, NewEvents: []string{"e1"},
				ReadyBucket: "x:b", Activities: []WorkItem{{Bucket: "a:x", Body: "w"}},
				Timers: []Timer{{DueAt: time.Now().Add(time.Hour), Body: "t"}},
			})
			if err != nil {
				t.Fatalf("ack: %v", err)
			}
			res, err = s.FetchOrchestrations(ctx, FetchOrchestrationsRequest{Buckets: []string{"o:b"}, Max: 1, LockTimeout: time.Minute})
			if err != nil || len(res.Items) != 1 {
				t.Fatalf("second fetch: %+v, %v", res, err)
			}
			locked := res.Items[0]

			srv.Restart(t)

			rec, err := s.Instance(ctx, it.InstanceID)
			if err != nil || rec.Status != StatusRunning || rec.ReadyBucket != "x:b" {
				t.Fatalf("instance after restart: %+v, %v", rec, err)
			}
			h, err := s.History(ctx, it.InstanceID, 1)
			if err != nil {
				t.Fatalf("history: %v", err)
			}
			wantEqual(t, "history after restart", []string{"e1"}, h)
			if n, _ := rdb.ZCard(ctx, s.keys.timersKey()).Result(); n != 1 {
				t.Errorf("timers after restart = %d, want 1", n)
			}
			// The lock taken before the restart is still held and still fenced.
			again, err := s.FetchOrchestrations(ctx, FetchOrchestrationsRequest{Buckets: []string{"o:b"}, Max: 1, LockTimeout: time.Minute})
			if err != nil || len(again.Items) != 0 {
				t.Fatalf("fetch after restart: %+v, %v; want nothing (still locked)", again, err)
			}
			err = s.AckOrchestration(ctx, OrchestrationAck{InstanceID: locked.InstanceID, Token: "stale", ExecutionID: 1, Status: StatusRunning})
			wantErr(t, "stale ack after restart", err, ErrLockLost)
			err = s.AckOrchestration(ctx, OrchestrationAck{InstanceID: locked.InstanceID, Token: locked.Token, ExecutionID: 1, Status: StatusRunning})
			wantErr(t, "ack after restart", err, nil)
			work, err := s.FetchWork(ctx, FetchWorkRequest{Buckets: []string{"a:x"}, Max: 5, LockTimeout: time.Minute})
			if err != nil || len(work.Items) != 1 || work.Items[0].Body != "w" {
				t.Fatalf("work after restart: %+v, %v", work, err)
			}
		})
	}
}
