package session

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/duroworker/duroworker/internal/redistest"
	"github.com/duroworker/duroworker/queue"
)

func TestOptionsWithDefaults(t *testing.T) {
	o := Options{}.WithDefaults()
	if o.LockTimeout != DefaultLockTimeout || o.IdleTimeout != DefaultIdleTimeout || o.MaxSessions != DefaultMaxSessions || !o.Enabled() {
		t.Fatalf("defaults not applied: %+v", o)
	}
	if err := (Options{}).Validate(30 * time.Second); err != nil {
		t.Fatalf("zero options: %v", err)
	}
	if (Options{MaxSessions: -1}).Enabled() {
		t.Fatal("negative MaxSessions must disable sessions")
	}
}

func TestValidateChecksInDeclarationOrder(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"negative lease", Options{LockTimeout: -time.Second}, "Sessions.LockTimeout must not be negative, got -1s"},
		{"tiny lease", Options{LockTimeout: time.Millisecond}, "Sessions.LockTimeout must be at least 100ms, got 1ms"},
		{"idle below activity lock", Options{IdleTimeout: 10 * time.Second}, "Sessions.IdleTimeout (10s) must exceed ActivityLockTimeout (30s)"},
		// Both fields are bad: the first declared one is reported, every time.
		{"both bad", Options{LockTimeout: time.Millisecond, IdleTimeout: time.Second}, "Sessions.LockTimeout must be at least 100ms, got 1ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 20 {
				err := tt.opts.Validate(30 * time.Second)
				if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
					t.Fatalf("err = %v, want %q", err, tt.want)
				}
			}
		})
	}
}

func TestFetchFieldsAddTheNodeBucketOnlyWhenEnabled(t *testing.T) {
	req := queue.FetchWorkRequest{Buckets: []string{"a:X"}}
	NewManager(nil, "n1", Options{}, nil).FetchFields(&req)
	if req.SessionOwner != "n1" || req.MaxSessions != DefaultMaxSessions || req.SessionLease != DefaultLockTimeout || req.Buckets[len(req.Buckets)-1] != "s:n1" {
		t.Fatalf("enabled: %+v", req)
	}
	req = queue.FetchWorkRequest{Buckets: []string{"a:X"}}
	NewManager(nil, "n1", Options{MaxSessions: -1}, nil).FetchFields(&req)
	if req.SessionOwner != "" || len(req.Buckets) != 1 {
		t.Fatalf("disabled: %+v", req)
	}
}

// claim makes owner claim session sid through a fetch and returns the item.
func claim(t *testing.T, s *queue.Store, m *Manager, sid string) queue.FetchedWork {
	t.Helper()
	ctx := context.Background()
	if err := s.CreateInstance(ctx, queue.CreateRequest{InstanceID: "p-" + sid, Bucket: "o:p", Message: "start"}); err != nil {
		t.Fatal(err)
	}
	res, err := s.FetchOrchestrations(ctx, queue.FetchOrchestrationsRequest{Buckets: []string{"o:p"}, Max: 1, LockTimeout: time.Minute})
	if err != nil || len(res.Items) != 1 {
		t.Fatalf("fetching the turn: %+v %v", res, err)
	}
	it := res.Items[0]
	if err := s.AckOrchestration(ctx, queue.OrchestrationAck{InstanceID: it.InstanceID, Token: it.Token, ExecutionID: 1, Status: queue.StatusRunning,
		Activities: []queue.WorkItem{{Bucket: "a:x", Body: sid, Session: sid}}}); err != nil {
		t.Fatal(err)
	}
	req := queue.FetchWorkRequest{Buckets: []string{"a:x"}, Max: 1, LockTimeout: time.Minute}
	m.FetchFields(&req)
	w, err := s.FetchWork(ctx, req)
	if err != nil || len(w.Items) != 1 {
		t.Fatalf("fetching the session item: %+v %v", w, err)
	}
	return w.Items[0]
}

// TestManagerRenewsUntilStoppedAndReleases runs a Manager on a real Redis:
// Start renews the lease (Held counts the session) until Stop, and Release
// unpins the session at once.
func TestManagerRenewsUntilStoppedAndReleases(t *testing.T) {
	if testing.Short() {
		t.Skip("needs redis-server")
	}
	srv := redistest.Start(t)
	s := queue.New(srv.Client(t), queue.Options{Prefix: "sess"})
	ctx := context.Background()
	m := NewManager(s, "n1", Options{LockTimeout: 300 * time.Millisecond}, nil)
	claim(t, s, m, "s1")
	m.Start(ctx)
	deadline := time.Now().Add(10 * time.Second)
	for m.Held() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the manager never renewed the session")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Well past the first lease: the renewals kept it.
	time.Sleep(600 * time.Millisecond)
	if info, ok, err := s.Session(ctx, "s1"); err != nil || !ok || info.Owner != "n1" {
		t.Fatalf("session after renewals: %+v pinned %v, %v", info, ok, err)
	}
	m.Stop()
	m.Stop() // twice is harmless
	if err := m.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if info, ok, err := s.Session(ctx, "s1"); err != nil || ok {
		t.Fatalf("session after Release: %+v pinned %v, %v", info, ok, err)
	}
}
