package queue

import (
	"strings"
	"testing"
	"time"
)

func TestCreateInstance(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		ps := e.subscribe(e.k.WakeOrchChannel())
		before := e.serverNow()
		req := CreateRequest{InstanceID: "i1", Name: "billing", Version: "1.0.2", ParentInstanceID: "p1", Bucket: "o:billing", Message: "start"}
		wantErr(t, "create", e.s.CreateInstance(e.ctx, req), nil)

		got := e.instance("i1")
		if got.CreatedAt.Before(before.Truncate(time.Millisecond)) || !got.CreatedAt.Equal(got.UpdatedAt) {
			t.Errorf("CreatedAt %v, UpdatedAt %v; want equal and not before %v", got.CreatedAt, got.UpdatedAt, before)
		}
		want := InstanceRecord{
			InstanceID: "i1", Name: "billing", Version: "1.0.2", Status: StatusPending, ParentInstanceID: "p1",
			ReadyBucket: "o:billing", CreatedAt: got.CreatedAt, UpdatedAt: got.UpdatedAt,
		}
		wantEqual(t, "instance", want, got)
		wantEqual(t, "inbox", []string{"start"}, e.lrange(e.k.InboxKey("i1")))
		score, ok := e.zscore(e.k.ReadyKey("o:billing"), "i1")
		if !ok || int64(score) != got.CreatedAt.UnixMilli() {
			t.Errorf("ready score = %v (present %v), want %d", score, ok, got.CreatedAt.UnixMilli())
		}
		if m := receive(t, ps); m.Payload != "o:billing" {
			t.Errorf("wake:orch payload = %q, want o:billing", m.Payload)
		}
	})
}

func TestCreateInstanceDuplicate(t *testing.T) {
	tests := []struct {
		name  string
		setup func(e *env)
	}{
		{name: "pending", setup: func(e *env) {}},
		{name: "running", setup: func(e *env) {
			it := e.fetchOne("o:billing", longLock)
			e.ack(OrchestrationAck{InstanceID: "i1", Token: it.Token, ReadyBucket: "x:billing"})
		}},
		{name: "completed", setup: func(e *env) {
			it := e.fetchOne("o:billing", longLock)
			e.ack(OrchestrationAck{InstanceID: "i1", Token: it.Token, Status: StatusCompleted})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEach(t, func(t *testing.T, e *env) {
				e.create("i1", "o:billing", "start")
				tt.setup(e)
				before := e.instance("i1")
				err := e.s.CreateInstance(e.ctx, CreateRequest{InstanceID: "i1", Name: "other", Bucket: "o:other", Message: "again"})
				wantErr(t, "second create", err, ErrInstanceExists)
				wantEqual(t, "instance after refused create", before, e.instance("i1"))
				if e.exists(e.k.ReadyKey("o:other")) {
					t.Error("refused create touched its bucket")
				}
			})
		})
	}
}

func TestCreateInstanceValidates(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		for _, req := range []CreateRequest{{Bucket: "o:b"}, {InstanceID: "i1"}} {
			if err := e.s.CreateInstance(e.ctx, req); err == nil {
				t.Errorf("CreateInstance(%+v) succeeded, want an error", req)
			}
		}
		if n, _ := e.rdb.DBSize(e.ctx).Result(); n != 0 {
			t.Errorf("invalid creates wrote %d keys", n)
		}
	})
}

func TestEnqueue(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(e *env)
		want      error
		wantInbox []string
	}{
		{name: "missing instance", setup: func(e *env) {}, want: ErrInstanceNotFound},
		{name: "completed instance", want: ErrInstanceEnded, setup: func(e *env) {
			e.create("i1", "o:b", "start")
			it := e.fetchOne("o:b", longLock)
			e.ack(OrchestrationAck{InstanceID: "i1", Token: it.Token, Status: StatusCompleted})
		}},
		{name: "failed instance", want: ErrInstanceEnded, setup: func(e *env) {
			e.create("i1", "o:b", "start")
			it := e.fetchOne("o:b", longLock)
			e.ack(OrchestrationAck{InstanceID: "i1", Token: it.Token, Status: StatusFailed})
		}},
		{name: "pending instance", wantInbox: []string{"start", "m"}, setup: func(e *env) {
			e.create("i1", "o:b", "start")
		}},
		{name: "waiting instance", wantInbox: []string{"m"}, setup: func(e *env) {
			e.create("i1", "o:b", "start")
			it := e.fetchOne("o:b", longLock)
			e.ack(OrchestrationAck{InstanceID: "i1", Token: it.Token, ReadyBucket: "x:b"})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEach(t, func(t *testing.T, e *env) {
				tt.setup(e)
				err := e.s.Enqueue(e.ctx, "i1", "m")
				wantErr(t, "enqueue", err, tt.want)
				if tt.want != nil {
					if e.exists(e.k.InboxKey("i1")) {
						t.Error("refused enqueue left an inbox")
					}
					return
				}
				wantEqual(t, "inbox", tt.wantInbox, e.lrange(e.k.InboxKey("i1")))
				rq := e.instance("i1").ReadyBucket
				if _, ok := e.zscore(e.k.ReadyKey(rq), "i1"); !ok {
					t.Errorf("instance not in ready:%s after enqueue", rq)
				}
			})
		})
	}
}

// TestEnqueueKeepsScore checks ZADD NX: a message to a locked or delayed
// instance does not make it fetchable earlier.
func TestEnqueueKeepsScore(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		e.create("i1", "o:b", "start")
		it := e.fetchOne("o:b", longLock)
		locked, _ := e.zscore(e.k.ReadyKey("o:b"), "i1")
		e.enqueue("i1", "m2")
		if s, _ := e.zscore(e.k.ReadyKey("o:b"), "i1"); s != locked {
			t.Errorf("score after enqueue to locked instance = %v, want lock deadline %v", s, locked)
		}
		e.fetchNone("o:b")

		wantErr(t, "abandon", e.s.AbandonOrchestration(e.ctx, "i1", it.Token, time.Hour, false), nil)
		delayed, _ := e.zscore(e.k.ReadyKey("o:b"), "i1")
		e.enqueue("i1", "m3")
		if s, _ := e.zscore(e.k.ReadyKey("o:b"), "i1"); s != delayed {
			t.Errorf("score after enqueue to delayed instance = %v, want %v", s, delayed)
		}
		e.fetchNone("o:b")
	})
}

func TestInstanceNotFound(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		_, err := e.s.Instance(e.ctx, "nope")
		wantErr(t, "Instance", err, ErrInstanceNotFound)
		h, err := e.s.History(e.ctx, "nope", 1)
		wantErr(t, "History", err, nil)
		if len(h) != 0 {
			t.Errorf("History of unknown instance = %v, want empty", h)
		}
	})
}

func TestEnginePins(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		pins, err := e.s.EnginePins(e.ctx)
		wantErr(t, "EnginePins", err, nil)
		if len(pins) != 0 {
			t.Fatalf("EnginePins on empty store = %v", pins)
		}
		for i, pin := range []string{"0.1.0", "0.2.0", "0.1.0"} {
			id := string(rune('a' + i))
			e.create(id, "o:b", "start")
			it := e.fetchOne("o:b", longLock)
			e.ack(OrchestrationAck{InstanceID: id, Token: it.Token, EnginePin: pin, ReadyBucket: "x:b"})
			if got := e.instance(id).EnginePin; got != pin {
				t.Errorf("instance %s pin = %q, want %q", id, got, pin)
			}
		}
		pins, err = e.s.EnginePins(e.ctx)
		wantErr(t, "EnginePins", err, nil)
		if len(pins) != 2 || !(pins[0] == "0.1.0" || pins[1] == "0.1.0") {
			t.Errorf("EnginePins = %v, want 0.1.0 and 0.2.0", pins)
		}
	})
}

func TestPrefixesAreIsolated(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		other := New(e.rdb, Options{Prefix: "tenant-b"})
		e.create("i1", "o:b", "start")
		_, err := other.Instance(e.ctx, "i1")
		wantErr(t, "Instance in other namespace", err, ErrInstanceNotFound)
		res, err := other.FetchOrchestrations(e.ctx, FetchOrchestrationsRequest{Buckets: []string{"o:b"}, Max: 1, LockTimeout: longLock})
		wantErr(t, "fetch in other namespace", err, nil)
		if len(res.Items) != 0 {
			t.Fatalf("other namespace fetched %d items", len(res.Items))
		}
		wantErr(t, "create same id in other namespace",
			other.CreateInstance(e.ctx, CreateRequest{InstanceID: "i1", Bucket: "o:b", Message: "s"}), nil)
		keys, err := e.rdb.Keys(e.ctx, "*").Result()
		wantErr(t, "KEYS", err, nil)
		for _, k := range keys {
			if !strings.HasPrefix(k, "{dw}:") && !strings.HasPrefix(k, "{tenant-b}:") {
				t.Errorf("key %q outside both namespaces", k)
			}
		}
	})
}
