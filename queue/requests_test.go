package queue

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/internal/redistest"
)

// TestRequestIDReplaysTheFirstAnswer runs the same create and enqueue twice,
// as go-redis does when it resends a script whose reply was lost: the second
// run answers like the first and writes nothing.
func TestRequestIDReplaysTheFirstAnswer(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		req := CreateRequest{InstanceID: "i1", Name: "orch", Bucket: "o:orch", Message: "start", RequestID: "req-1"}
		for run := 1; run <= 2; run++ {
			if err := e.s.CreateInstance(e.ctx, req); err != nil {
				t.Fatalf("create, run %d: %v", run, err)
			}
		}
		for run := 1; run <= 2; run++ {
			if err := e.s.EnqueueRequest(e.ctx, "i1", "event", "req-2", 0); err != nil {
				t.Fatalf("enqueue, run %d: %v", run, err)
			}
		}
		if got := e.rdb.LRange(e.ctx, e.k.InboxKey("i1"), 0, -1).Val(); strings.Join(got, ",") != "start,event" {
			t.Fatalf("inbox = %q, want the start and one event", got)
		}
		if n := e.rdb.HGet(e.ctx, e.k.StatsKey(), "pending").Val(); n != "1" {
			t.Fatalf("pending counter = %s, want 1", n)
		}
		if ttl := e.rdb.PTTL(e.ctx, e.k.requestKey("req-1")).Val(); ttl <= 0 || ttl > RequestTTL {
			t.Fatalf("request record TTL = %v, want (0, %v]", ttl, RequestTTL)
		}

		// Without a request id, or with another one, the answers are the usual ones.
		req.RequestID = ""
		if err := e.s.CreateInstance(e.ctx, req); !errors.Is(err, ErrInstanceExists) {
			t.Fatalf("create without a request id: %v, want ErrInstanceExists", err)
		}
		req.RequestID = "req-3"
		if err := e.s.CreateInstance(e.ctx, req); !errors.Is(err, ErrInstanceExists) {
			t.Fatalf("create with a new request id: %v, want ErrInstanceExists", err)
		}
		// A request id names one request: reused for another instance or kind, it is refused.
		if err := e.s.CreateInstance(e.ctx, CreateRequest{InstanceID: "i2", Name: "orch", Bucket: "o:orch", Message: "m", RequestID: "req-1"}); !errors.Is(err, ErrRequestReused) {
			t.Fatalf("request id reused for another instance: %v, want ErrRequestReused", err)
		}
		if err := e.s.EnqueueRequest(e.ctx, "i1", "event", "req-1", 0); !errors.Is(err, ErrRequestReused) {
			t.Fatalf("request id of a create reused for an enqueue: %v, want ErrRequestReused", err)
		}
		// The first delivery may end the instance; its resend still succeeds.
		e.rdb.HSet(e.ctx, e.k.InstanceKey("i1"), "status", StatusCompleted)
		if err := e.s.EnqueueRequest(e.ctx, "i1", "event", "req-2", 0); err != nil {
			t.Fatalf("resent enqueue after the instance ended: %v", err)
		}
		if err := e.s.EnqueueRequest(e.ctx, "i1", "event", "req-4", 0); !errors.Is(err, ErrInstanceEnded) {
			t.Fatalf("new enqueue after the instance ended: %v, want ErrInstanceEnded", err)
		}
		if e.rdb.Exists(e.ctx, e.k.InstanceKey("i2")).Val() != 0 {
			t.Fatal("a refused request created its instance")
		}
		if err := e.s.EnqueueRequest(e.ctx, "i1", "event", "bad id", 0); err == nil {
			t.Fatal("a request id with a space was accepted")
		}
	})
}

func TestValidatePrefix(t *testing.T) {
	for _, p := range []string{"dw", "tenant-a", "x:y", "examples:basics:1700000000", "a.b_c", strings.Repeat("p", maxPrefixLen)} {
		if err := ValidatePrefix(p); err != nil {
			t.Errorf("ValidatePrefix(%q) = %v, want nil", p, err)
		}
	}
	for _, p := range []string{"", "*", "o*", "a?", "a[b]", `a\b`, "a b", "a\nb", "a\tb", "{dw}", "a}b", "é", strings.Repeat("p", maxPrefixLen+1)} {
		err := ValidatePrefix(p)
		if !errors.Is(err, errInvalidPrefix) {
			t.Errorf("ValidatePrefix(%q) = %v, want errInvalidPrefix", p, err)
		}
		if p == "" {
			continue // NewKeys("") means DefaultPrefix
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewKeys(%q) did not panic", p)
				}
			}()
			NewKeys(p)
		}()
	}
	if got := New(nil, Options{}).Keys().Prefix(); got != "{dw}:" {
		t.Errorf("New with the default prefix: prefix %q, want {dw}:", got)
	}
}

// TestDeniedPublishWritesNothing: under an ACL that allows the namespace's
// keys but no channels, a create or an enqueue fails on its PUBLISH, which
// the scripts run before any write, so nothing is left behind (a retry is
// not answered "already exists").
func TestDeniedPublishWritesNothing(t *testing.T) {
	srv := redistest.Start(t)
	admin := srv.Client(t)
	ctx := context.Background()
	if err := admin.Do(ctx, "ACL", "SETUSER", "producer", "on", ">pw", "~{dw}:*", "resetchannels", "+@all").Err(); err != nil {
		t.Fatalf("ACL SETUSER: %v", err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), Username: "producer", Password: "pw"})
	defer rdb.Close()
	s := New(rdb, Options{})
	k := s.Keys()

	err := s.CreateInstance(ctx, CreateRequest{InstanceID: "i1", Name: "orch", Bucket: "o:orch", Message: "start", RequestID: "r1"})
	if err == nil || !strings.Contains(err.Error(), "channel") {
		t.Fatalf("create without channel permission: %v, want a channel permission error", err)
	}
	if keys := admin.Keys(ctx, "*").Val(); len(keys) != 0 {
		t.Fatalf("a denied create wrote %q", keys)
	}

	admin.Do(ctx, "ACL", "SETUSER", "producer", "&*")
	if err := s.CreateInstance(ctx, CreateRequest{InstanceID: "i1", Name: "orch", Bucket: "o:orch", Message: "start"}); err != nil {
		t.Fatalf("create once channels are allowed: %v", err)
	}
	admin.Do(ctx, "ACL", "SETUSER", "producer", "resetchannels")
	before := admin.LLen(ctx, k.InboxKey("i1")).Val()
	err = s.EnqueueRequest(ctx, "i1", "event", "r2", 0)
	if err == nil || !strings.Contains(err.Error(), "channel") {
		t.Fatalf("enqueue without channel permission: %v, want a channel permission error", err)
	}
	if after := admin.LLen(ctx, k.InboxKey("i1")).Val(); after != before {
		t.Fatalf("a denied enqueue changed the inbox from %d to %d messages", before, after)
	}
	if admin.Exists(ctx, k.requestKey("r2")).Val() != 0 {
		t.Fatal("a denied enqueue recorded its request id")
	}
}
