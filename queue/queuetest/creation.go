package queuetest

import (
	"github.com/duroworker/duroworker/queue"
)

// spawn runs a turn of Running instance parent that starts children.
func (e *env) spawn(parent string, kids ...queue.ChildStart) {
	e.t.Helper()
	it := e.turn(parent, "spawn")
	e.ack(queue.OrchestrationAck{InstanceID: parent, Token: it.Token, ExecutionID: e.instance(parent).ExecutionID, Children: kids})
}

func child(id, parent string) queue.ChildStart {
	return queue.ChildStart{InstanceID: id, Name: "sub", Version: "1.0", ParentInstanceID: parent, Bucket: "o:sub", Message: "start-" + id}
}

func (e *env) children(id string) []string {
	e.t.Helper()
	kids, err := e.s.Children(e.ctx, id)
	e.must("Children "+id, err)
	return append([]string{}, kids...)
}

var creationCases = []testCase{
	{"create_makes_a_pending_instance", func(e *env) {
		e.must("create", e.s.CreateInstance(e.ctx, queue.CreateRequest{InstanceID: "i1", Name: "orch", Version: "1.2",
			ParentInstanceID: "", Bucket: "v:orch@1.2", Message: "start"}))
		r := e.instance("i1")
		if r.InstanceID != "i1" || r.Name != "orch" || r.Version != "1.2" || r.Status != queue.StatusPending ||
			r.ExecutionID != 0 || r.ReadyBucket != "v:orch@1.2" || r.Locked || r.Attempts != 0 || r.Output != "" ||
			r.CreatedAt.IsZero() || !r.CreatedAt.Equal(r.UpdatedAt) || r.CustomStatusSet || r.EnginePin != "" {
			e.t.Fatalf("new instance = %+v", r)
		}
		wantEqual(e.t, "first batch", []string{"start"}, e.fetchOne("v:orch@1.2").Messages)
		if ex, err := e.s.Executions(e.ctx, "i1"); err != nil || len(ex) != 0 {
			e.t.Fatalf("executions of a pending instance = %+v, %v", ex, err)
		}
	}},
	{"duplicate_create_fails_and_leaves_the_instance_alone", func(e *env) {
		e.create("i1", "o:b", "start")
		before := e.snap("i1")
		err := e.s.CreateInstance(e.ctx, queue.CreateRequest{InstanceID: "i1", Name: "other", Bucket: "o:c", Message: "again"})
		wantErr(e.t, "duplicate create", err, queue.ErrInstanceExists)
		wantSame(e.t, "a duplicate create", before, e.snap("i1"))
		// Also when the existing instance has ended.
		it := e.fetchOne("o:b")
		e.ack(queue.OrchestrationAck{InstanceID: "i1", Token: it.Token, Status: queue.StatusCompleted})
		err = e.s.CreateInstance(e.ctx, queue.CreateRequest{InstanceID: "i1", Name: "orch", Bucket: "o:b", Message: "again"})
		wantErr(e.t, "create over a completed instance", err, queue.ErrInstanceExists)
		if r := e.instance("i1"); r.Status != queue.StatusCompleted {
			e.t.Fatalf("instance = %+v", r)
		}
	}},
	{"enqueue_never_creates_an_instance", func(e *env) {
		wantErr(e.t, "enqueue to a missing instance", e.s.Enqueue(e.ctx, "ghost", "m"), queue.ErrInstanceNotFound)
		e.gone("ghost")
		if m := e.metrics(); m.Instances != 0 || m.Pending != 0 {
			e.t.Fatalf("metrics = %+v", m)
		}
	}},
	{"version_may_be_empty", func(e *env) {
		e.create("i1", "o:b", "start")
		if r := e.instance("i1"); r.Version != "" {
			e.t.Fatalf("version = %q", r.Version)
		}
		it := e.fetchOne("o:b")
		e.ack(queue.OrchestrationAck{InstanceID: "i1", Token: it.Token, Version: "3.0"})
		if r := e.instance("i1"); r.Version != "3.0" || r.Status != queue.StatusRunning || r.ExecutionID != 1 {
			e.t.Fatalf("after first ack = %+v", r)
		}
	}},
	{"create_validates", func(e *env) {
		wantPlainErr(e.t, "create without id", e.s.CreateInstance(e.ctx, queue.CreateRequest{Bucket: "o:b", Message: "m"}))
		wantPlainErr(e.t, "create without bucket", e.s.CreateInstance(e.ctx, queue.CreateRequest{InstanceID: "i1", Message: "m"}))
		e.gone("i1")
	}},
	{"ack_creates_children_linked_to_their_parent", func(e *env) {
		e.start("p", "o:p")
		e.spawn("p", child("c2", "p"), child("c1", "p"))
		wantEqual(e.t, "children", []string{"c1", "c2"}, e.children("p"))
		c := e.instance("c1")
		if c.ParentInstanceID != "p" || c.Status != queue.StatusPending || c.Name != "sub" || c.Version != "1.0" || c.ReadyBucket != "o:sub" {
			e.t.Fatalf("child = %+v", c)
		}
		got := e.fetchFrom("o:sub")
		if len(got) != 2 {
			e.t.Fatalf("children fetched: %v", itemIDs(got))
		}
	}},
	{"detached_child_has_no_parent", func(e *env) {
		e.start("p", "o:p")
		d := child("d", "")
		e.spawn("p", d)
		if r := e.instance("d"); r.ParentInstanceID != "" || r.Status != queue.StatusPending {
			e.t.Fatalf("detached = %+v", r)
		}
		wantEqual(e.t, "children", []string{}, e.children("p"))
	}},
	{"child_collision_delivers_the_collision_message", func(e *env) {
		e.start("p", "o:p")
		e.create("taken", "o:other", "original")
		before := e.instance("taken")
		c := child("taken", "p")
		c.CollisionMessage = "collided:taken"
		e.spawn("p", c)
		if after := e.instance("taken"); after != before {
			e.t.Fatalf("existing instance changed: %+v -> %+v", before, after)
		}
		wantEqual(e.t, "children", []string{}, e.children("p"))
		wantEqual(e.t, "parent batch", []string{"collided:taken"}, e.fetchOne("o:p").Messages)
	}},
	{"collision_without_message_is_ignored", func(e *env) {
		e.start("p", "o:p")
		e.create("taken", "o:other", "original")
		e.spawn("p", child("taken", "p"))
		e.fetchNone("o:p")
	}},
	{"collision_message_is_dropped_when_the_parent_ends", func(e *env) {
		e.start("p", "o:p")
		e.create("taken", "o:other", "original")
		c := child("taken", "p")
		c.CollisionMessage = "collided"
		it := e.turn("p", "m")
		e.ack(queue.OrchestrationAck{InstanceID: "p", Token: it.Token, Status: queue.StatusCompleted, Children: []queue.ChildStart{c}})
		e.fetchNone("o:p")
		if r := e.instance("p"); r.Status != queue.StatusCompleted {
			e.t.Fatalf("parent = %+v", r)
		}
	}},
	{"duplicate_children_in_one_ack_collide_with_the_first", func(e *env) {
		e.start("p", "o:p")
		a, b := child("c", "p"), child("c", "p")
		b.Message = "second-start"
		b.CollisionMessage = "dup"
		e.spawn("p", a, b)
		wantEqual(e.t, "child batch", []string{"start-c"}, e.fetchOne("o:sub").Messages)
		wantEqual(e.t, "parent batch", []string{"dup"}, e.fetchOne("o:p").Messages)
	}},
	{"create_with_a_parent_link_is_not_a_registered_child", func(e *env) {
		e.start("p", "o:p")
		e.must("create", e.s.CreateInstance(e.ctx, queue.CreateRequest{InstanceID: "c", Name: "sub", ParentInstanceID: "p", Bucket: "o:c", Message: "m"}))
		if r := e.instance("c"); r.ParentInstanceID != "p" {
			e.t.Fatalf("parent link = %q", r.ParentInstanceID)
		}
		wantEqual(e.t, "children", []string{}, e.children("p"))
	}},
}
