package queue

import (
	"fmt"
	"sort"
	"testing"
)

// hgetall returns the fields of hash key.
func (e *env) hgetall(key string) map[string]string {
	e.t.Helper()
	h, err := e.rdb.HGetAll(e.ctx, key).Result()
	if err != nil {
		e.t.Fatalf("HGETALL %s: %v", key, err)
	}
	return h
}

// smembers returns the members of set key, sorted.
func (e *env) smembers(key string) []string {
	e.t.Helper()
	m, err := e.rdb.SMembers(e.ctx, key).Result()
	if err != nil {
		e.t.Fatalf("SMEMBERS %s: %v", key, err)
	}
	sort.Strings(m)
	return m
}

// startTurn creates id in bucket "o:b" and fetches its first turn.
func (e *env) startTurn(id string) OrchestrationItem {
	e.t.Helper()
	e.create(id, "o:b", "start")
	return e.fetchOne("o:b", longLock)
}

// withoutTimes drops the fields that hold times (and the creation sequence
// number) from an instance hash.
func withoutTimes(h map[string]string) map[string]string {
	out := make(map[string]string, len(h))
	for f, v := range h {
		if f != "ctime" && f != "utime" && f != "cseq" {
			out[f] = v
		}
	}
	return out
}

func TestAckCreatesChildren(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		it := e.startTurn("p1")
		wake := e.subscribe(e.k.WakeOrchChannel())
		e.ack(OrchestrationAck{InstanceID: "p1", Token: it.Token, ReadyBucket: "x:p", NewEvents: []string{"child-scheduled"},
			Children: []ChildStart{
				{InstanceID: "p1:0001", Name: "shipping", Version: "2.0.0", ParentInstanceID: "p1", Bucket: "o:shipping", Message: "start-sub"},
				{InstanceID: "detached-1", Name: "audit", Bucket: "o:audit", Message: "start-detached"},
			}})

		// Each child is exactly what CreateInstance writes.
		tests := []struct {
			id  string
			req CreateRequest
		}{
			{"p1:0001", CreateRequest{Name: "shipping", Version: "2.0.0", ParentInstanceID: "p1", Bucket: "o:shipping", Message: "start-sub"}},
			{"detached-1", CreateRequest{Name: "audit", Bucket: "o:audit", Message: "start-detached"}},
		}
		for _, tt := range tests {
			ref := tt.req
			ref.InstanceID = "ref-" + tt.id
			ref.Bucket = "o:ref"
			wantErr(t, "CreateInstance(ref)", e.s.CreateInstance(e.ctx, ref), nil)
			want := withoutTimes(e.hgetall(e.k.InstanceKey(ref.InstanceID)))
			want["rq"] = tt.req.Bucket
			wantEqual(t, tt.id+" hash", want, withoutTimes(e.hgetall(e.k.InstanceKey(tt.id))))
			wantEqual(t, tt.id+" inbox", []string{tt.req.Message}, e.lrange(e.k.InboxKey(tt.id)))
			rec := e.instance(tt.id)
			if score, ok := e.zscore(e.k.ReadyKey(tt.req.Bucket), tt.id); !ok || int64(score) != rec.CreatedAt.UnixMilli() {
				t.Errorf("%s ready score = %v (present %v), want its creation time %d", tt.id, score, ok, rec.CreatedAt.UnixMilli())
			}
		}
		wantEqual(t, "buckets:o", []string{"o:audit", "o:b", "o:ref", "o:shipping", "x:p"}, e.smembers(e.k.OrchestrationBucketsKey()))
		wantEqual(t, "children of p1", []string{"p1:0001"}, e.smembers(e.k.childrenKey("p1")))
		if e.exists(e.k.childrenKey("")) {
			t.Error("detached child was added to a children set")
		}
		got := map[string]bool{}
		for range 2 {
			got[receive(t, wake).Payload] = true
		}
		wantEqual(t, "wake:orch payloads", map[string]bool{"o:shipping": true, "o:audit": true}, got)

		// The child is visible to a fetch of its bucket, with its parent.
		child := e.fetchOne("o:shipping", longLock)
		wantEqual(t, "child batch", []string{"start-sub"}, child.Messages)
		if child.Instance.ParentInstanceID != "p1" || child.Instance.Status != StatusPending {
			t.Errorf("child record = %+v, want Pending with parent p1", child.Instance)
		}
		// The parent has nothing to do: it was not readied by its children.
		e.fetchNone("x:p")
	})
}

// TestAckChildrenAtomic: an ack that is refused creates no child, and a
// retried ack does not create them twice or report a collision.
func TestAckChildrenAtomic(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		it := e.startTurn("p1")
		ack := OrchestrationAck{InstanceID: "p1", Token: "not-the-lock", ExecutionID: 1, Status: StatusRunning, ReadyBucket: "x:p",
			Children: []ChildStart{{InstanceID: "c1", Name: "n", ParentInstanceID: "p1", Bucket: "o:c", Message: "s", CollisionMessage: "collided"}}}
		wantErr(t, "ack with a stale token", e.s.AckOrchestration(e.ctx, ack), ErrLockLost)
		if e.exists(e.k.InstanceKey("c1")) || e.exists(e.k.childrenKey("p1")) || e.exists(e.k.ReadyKey("o:c")) {
			t.Fatal("refused ack created its child")
		}
		ack.Token = it.Token
		wantErr(t, "ack", e.s.AckOrchestration(e.ctx, ack), nil)
		before := e.hgetall(e.k.InstanceKey("c1"))
		wantErr(t, "retried ack", e.s.AckOrchestration(e.ctx, ack), nil)
		wantEqual(t, "child after retried ack", before, e.hgetall(e.k.InstanceKey("c1")))
		wantEqual(t, "child inbox", []string{"s"}, e.lrange(e.k.InboxKey("c1")))
		if e.exists(e.k.InboxKey("p1")) {
			t.Errorf("retried ack reported a collision: parent inbox %v", e.lrange(e.k.InboxKey("p1")))
		}
	})
}

func TestAckChildCollision(t *testing.T) {
	tests := []struct {
		name      string
		existing  func(e *env) // creates instance "c1" in some state
		collision string
	}{
		{name: "pending, with message", existing: func(e *env) { e.create("c1", "o:c", "first") }, collision: "collided"},
		{name: "running, with message", existing: func(e *env) {
			e.create("c1", "o:c", "first")
			it := e.fetchOne("o:c", longLock)
			e.ack(OrchestrationAck{InstanceID: "c1", Token: it.Token, ReadyBucket: "x:c"})
		}, collision: "collided"},
		{name: "completed, with message", existing: func(e *env) {
			e.create("c1", "o:c", "first")
			it := e.fetchOne("o:c", longLock)
			e.ack(OrchestrationAck{InstanceID: "c1", Token: it.Token, Status: StatusCompleted, Output: "old"})
		}, collision: "collided"},
		{name: "pending, silent", existing: func(e *env) { e.create("c1", "o:c", "first") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEach(t, func(t *testing.T, e *env) {
				tt.existing(e)
				hash := e.hgetall(e.k.InstanceKey("c1"))
				inbox := e.lrange(e.k.InboxKey("c1"))
				it := e.startTurn("p1")
				e.enqueue("p1", "during") // arrives during the turn
				e.ack(OrchestrationAck{InstanceID: "p1", Token: it.Token, ReadyBucket: "x:p", Children: []ChildStart{
					{InstanceID: "c1", Name: "other", ParentInstanceID: "p1", Bucket: "o:other", Message: "second", CollisionMessage: tt.collision},
				}})

				wantEqual(t, "existing instance", hash, e.hgetall(e.k.InstanceKey("c1")))
				wantEqual(t, "existing inbox", inbox, e.lrange(e.k.InboxKey("c1")))
				if e.exists(e.k.ReadyKey("o:other")) || e.exists(e.k.childrenKey("p1")) {
					t.Error("collision touched the child's bucket or the children set")
				}
				want := []string{"during"}
				if tt.collision != "" {
					want = append(want, tt.collision)
				}
				// The batch ("start") was trimmed; the collision message
				// follows what arrived during the turn, and the parent is
				// ready at once to see it.
				wantEqual(t, "parent inbox", want, e.lrange(e.k.InboxKey("p1")))
				next := e.fetchOne("x:p", longLock)
				wantEqual(t, "parent's next batch", want, next.Messages)
			})
		})
	}
}

// TestAckChildCollisionReadiesIdleParent: with nothing else in its inbox,
// the collision message alone re-readies the parent.
func TestAckChildCollisionReadiesIdleParent(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		e.create("c1", "o:c", "first")
		it := e.startTurn("p1")
		wake := e.subscribe(e.k.WakeOrchChannel())
		e.ack(OrchestrationAck{InstanceID: "p1", Token: it.Token, ReadyBucket: "x:p", Children: []ChildStart{
			{InstanceID: "c1", Name: "n", ParentInstanceID: "p1", Bucket: "o:c", Message: "s", CollisionMessage: "collided"},
		}})
		if m := receive(t, wake); m.Payload != "x:p" {
			t.Errorf("wake:orch payload = %q, want the parent's bucket x:p", m.Payload)
		}
		next := e.fetchOne("x:p", longLock)
		wantEqual(t, "parent batch", []string{"collided"}, next.Messages)
	})
}

// TestAckChildCollisionCases covers collisions that the ack itself causes
// and a parent that ends in the same ack.
func TestAckChildCollisionCases(t *testing.T) {
	tests := []struct {
		name       string
		status     string
		children   []ChildStart
		wantCreate []string
		wantInbox  []string
	}{
		{
			name:   "same id twice in one ack",
			status: StatusRunning,
			children: []ChildStart{
				{InstanceID: "c1", Name: "n", ParentInstanceID: "p1", Bucket: "o:c", Message: "s1", CollisionMessage: "dup-1"},
				{InstanceID: "c1", Name: "n", ParentInstanceID: "p1", Bucket: "o:c", Message: "s2", CollisionMessage: "dup-2"},
			},
			wantCreate: []string{"c1"},
			wantInbox:  []string{"dup-2"},
		},
		{
			name:      "child id is the parent's own",
			status:    StatusRunning,
			children:  []ChildStart{{InstanceID: "p1", Name: "n", Bucket: "o:c", Message: "s", CollisionMessage: "self"}},
			wantInbox: []string{"self"},
		},
		{
			name:   "parent completes in the same ack",
			status: StatusCompleted,
			children: []ChildStart{
				{InstanceID: "d1", Name: "n", Bucket: "o:c", Message: "s"},
				{InstanceID: "existing", Name: "n", Bucket: "o:c", Message: "s", CollisionMessage: "dropped"},
			},
			wantCreate: []string{"d1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEach(t, func(t *testing.T, e *env) {
				e.create("existing", "o:e", "first")
				it := e.startTurn("p1")
				e.ack(OrchestrationAck{InstanceID: "p1", Token: it.Token, Status: tt.status, ReadyBucket: "x:p", Children: tt.children})
				for _, id := range tt.wantCreate {
					if r := e.instance(id); r.Status != StatusPending {
						t.Errorf("%s = %+v, want a Pending instance", id, r)
					}
				}
				var inbox []string
				if e.exists(e.k.InboxKey("p1")) {
					inbox = e.lrange(e.k.InboxKey("p1"))
				}
				wantEqual(t, "parent inbox", tt.wantInbox, inbox)
				wantEqual(t, "existing inbox", []string{"first"}, e.lrange(e.k.InboxKey("existing")))
			})
		})
	}
}

// TestAckChildThenOutbox: a message sent in the turn that starts a child
// reaches it after its start message.
func TestAckChildThenOutbox(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		it := e.startTurn("p1")
		e.ack(OrchestrationAck{InstanceID: "p1", Token: it.Token, ReadyBucket: "x:p",
			Children: []ChildStart{{InstanceID: "c1", Name: "n", ParentInstanceID: "p1", Bucket: "o:c", Message: "start"}},
			Outbox:   []OutboundMessage{{InstanceID: "c1", Body: "event"}}})
		wantEqual(t, "child inbox", []string{"start", "event"}, e.lrange(e.k.InboxKey("c1")))
	})
}

// TestAckManyChildren creates more children than any chunk of the script.
func TestAckManyChildren(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		it := e.startTurn("p1")
		var children []ChildStart
		for i := range 300 {
			children = append(children, ChildStart{InstanceID: fmt.Sprintf("p1:%04d", i), Name: "n", ParentInstanceID: "p1", Bucket: "o:c", Message: "s"})
		}
		e.ack(OrchestrationAck{InstanceID: "p1", Token: it.Token, Children: children})
		if n, _ := e.rdb.SCard(e.ctx, e.k.childrenKey("p1")).Result(); n != 300 {
			t.Errorf("children set has %d members, want 300", n)
		}
		if n, _ := e.rdb.ZCard(e.ctx, e.k.ReadyKey("o:c")).Result(); n != 300 {
			t.Errorf("o:c has %d ready instances, want 300", n)
		}
	})
}

// TestAckValidatesExtensions: malformed children, cancellations, custom
// status and KV ops, and oversized lists, are refused before anything is
// written.
func TestAckValidatesExtensions(t *testing.T) {
	child := ChildStart{InstanceID: "c1", Name: "n", Bucket: "o:c", Message: "s"}
	many := func(n int) []string { return make([]string, n) }
	tests := []struct {
		name    string
		mutate  func(a *OrchestrationAck)
		wantErr error
	}{
		{name: "child without id", mutate: func(a *OrchestrationAck) { c := child; c.InstanceID = ""; a.Children = []ChildStart{c} }},
		{name: "child without name", mutate: func(a *OrchestrationAck) { c := child; c.Name = ""; a.Children = []ChildStart{c} }},
		{name: "child without bucket", mutate: func(a *OrchestrationAck) { c := child; c.Bucket = ""; a.Children = []ChildStart{c} }},
		{name: "child without message", mutate: func(a *OrchestrationAck) { c := child; c.Message = ""; a.Children = []ChildStart{c} }},
		{name: "child bucket with brace", mutate: func(a *OrchestrationAck) { c := child; c.Bucket = "o:{c}"; a.Children = []ChildStart{c} }},
		{name: "cancel execution 0", mutate: func(a *OrchestrationAck) { a.CancelActivities = []ActivityRef{{EventID: 3}} }},
		{name: "custom status clear with value", mutate: func(a *OrchestrationAck) { a.CustomStatus = &CustomStatusUpdate{Value: "v", Clear: true} }},
		{name: "kv set without key", mutate: func(a *OrchestrationAck) { a.KV = []KVOp{{Op: KVSet, Value: "v"}} }},
		{name: "kv clear without key", mutate: func(a *OrchestrationAck) { a.KV = []KVOp{{Op: KVClear}} }},
		{name: "kv key with leading NUL", mutate: func(a *OrchestrationAck) { a.KV = []KVOp{{Op: KVSet, Key: "\x00all", Value: "1"}} }},
		{name: "kv zero kind", mutate: func(a *OrchestrationAck) { a.KV = []KVOp{{Key: "k", Value: "v"}} }},
		{name: "kv invalid UTF-8", mutate: func(a *OrchestrationAck) { a.KV = []KVOp{{Op: KVSet, Key: "k", Value: "\xff"}} }},
		{name: "too many events", mutate: func(a *OrchestrationAck) { a.NewEvents = many(MaxAckEntries + 1) }, wantErr: ErrAckTooLarge},
		{name: "too many children", mutate: func(a *OrchestrationAck) {
			a.Children = make([]ChildStart, MaxAckEntries+1)
		}, wantErr: ErrAckTooLarge},
		{name: "too many cancels", mutate: func(a *OrchestrationAck) {
			a.CancelActivities = make([]ActivityRef, MaxAckEntries+1)
		}, wantErr: ErrAckTooLarge},
		{name: "too many kv ops", mutate: func(a *OrchestrationAck) { a.KV = make([]KVOp, MaxAckEntries+1) }, wantErr: ErrAckTooLarge},
	}
	forEach(t, func(t *testing.T, e *env) {
		it := e.startTurn("p1")
		good := OrchestrationAck{InstanceID: "p1", Token: it.Token, ExecutionID: 1, Status: StatusRunning}
		before := e.hgetall(e.k.InstanceKey("p1"))
		for _, tt := range tests {
			a := good
			tt.mutate(&a)
			err := e.s.AckOrchestration(e.ctx, a)
			if err == nil {
				t.Errorf("%s: ack succeeded, want an error", tt.name)
				continue
			}
			if tt.wantErr != nil {
				wantErr(t, tt.name, err, tt.wantErr)
			}
		}
		wantEqual(t, "instance after refused acks", before, e.hgetall(e.k.InstanceKey("p1")))
		if e.exists(e.k.InstanceKey("c1")) || e.exists(e.k.kvDeltaKey("p1")) {
			t.Error("a refused ack wrote something")
		}
		// Exactly MaxAckEntries is accepted.
		a := good
		a.NewEvents = many(MaxAckEntries)
		wantErr(t, "ack with MaxAckEntries events", e.s.AckOrchestration(e.ctx, a), nil)
		if got := len(e.history("p1", 1)); got != MaxAckEntries {
			t.Errorf("history has %d events, want %d", got, MaxAckEntries)
		}
	})
}
