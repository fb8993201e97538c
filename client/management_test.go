package client

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/internal/redistest"
	"github.com/duroworker/duroworker/internal/replay"
	"github.com/duroworker/duroworker/queue"
)

// newTestClient returns a client on a fresh miniredis.
func newTestClient(t *testing.T) (*Client, *queue.Store) {
	t.Helper()
	_, rdb := redistest.StartMini(t)
	store := queue.New(rdb, queue.Options{})
	c := New(store)
	t.Cleanup(func() { _ = c.Close() })
	return c, store
}

// turn fetches id (alone in bucket "o:<id>") and acks it with ack.
func turn(t *testing.T, s *queue.Store, id string, ack queue.OrchestrationAck) {
	t.Helper()
	ctx := context.Background()
	res, err := s.FetchOrchestrations(ctx, queue.FetchOrchestrationsRequest{Buckets: []string{"o:" + id}, Max: 1, LockTimeout: time.Minute})
	if err != nil || len(res.Items) != 1 {
		t.Fatalf("fetch %s: %+v %v", id, res, err)
	}
	ack.InstanceID, ack.Token = id, res.Items[0].Token
	if ack.ExecutionID == 0 {
		ack.ExecutionID = 1
	}
	if ack.Status == "" {
		ack.Status = queue.StatusRunning
	}
	if err := s.AckOrchestration(ctx, ack); err != nil {
		t.Fatalf("ack %s: %v", id, err)
	}
}

func event(t *testing.T, id int64, kind replay.EventKind) string {
	t.Helper()
	s, err := replay.EncodeEvent(replay.Event{ID: id, Kind: kind, Engine: engine.Version})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestManagementInputValidation(t *testing.T) {
	c, _ := newTestClient(t)
	ctx := context.Background()
	calls := map[string]error{}
	_, calls["list by ContinuedAsNew"] = c.ListInstances(ctx, ListOptions{Status: "ContinuedAsNew"})
	_, calls["list with negative offset"] = c.ListInstances(ctx, ListOptions{Offset: -1})
	_, calls["history of execution -1"] = c.ReadHistory(ctx, "i", -1)
	_, calls["delete empty id"] = c.DeleteInstance(ctx, "", true)
	_, calls["bulk with empty id"] = c.DeleteInstances(ctx, BulkDeleteFilter{InstanceIDs: []string{""}})
	_, calls["bulk with negative limit"] = c.DeleteInstances(ctx, BulkDeleteFilter{Limit: -1})
	_, calls["prune with negative keep"] = c.PruneExecutions(ctx, "i", PruneOptions{KeepLast: -1})
	for name, err := range calls {
		if !errors.Is(err, ErrInvalidInput) {
			t.Errorf("%s: err = %v, want ErrInvalidInput", name, err)
		}
	}
	for name, err := range map[string]error{
		"executions": func() error { _, err := c.ListExecutions(ctx, "nope"); return err }(),
		"history":    func() error { _, err := c.ReadHistory(ctx, "nope", 0); return err }(),
		"tree":       func() error { _, err := c.GetInstanceTree(ctx, "nope"); return err }(),
		"delete":     func() error { _, err := c.DeleteInstance(ctx, "nope", true); return err }(),
		"prune":      func() error { _, err := c.PruneExecutions(ctx, "nope", PruneOptions{}); return err }(),
	} {
		if !errors.Is(err, ErrInstanceNotFound) {
			t.Errorf("%s of a missing instance: err = %v, want ErrInstanceNotFound", name, err)
		}
	}
}

func TestReadHistoryAndExecutions(t *testing.T) {
	c, s := newTestClient(t)
	ctx := context.Background()
	if err := s.CreateInstance(ctx, queue.CreateRequest{InstanceID: "i", Name: "n", Bucket: "o:i", Message: "start"}); err != nil {
		t.Fatal(err)
	}
	if h, err := c.ReadHistory(ctx, "i", 0); err != nil || len(h) != 0 {
		t.Fatalf("history while Pending: %v %v", h, err)
	}
	turn(t, s, "i", queue.OrchestrationAck{ExecutionID: 1, Status: queue.StatusContinuedAsNew, Output: "next", HeadMessages: []string{"restart"},
		NewEvents: []string{event(t, 1, replay.EventOrchestrationStarted), event(t, 2, replay.EventOrchestrationContinuedAsNew)}})
	turn(t, s, "i", queue.OrchestrationAck{ExecutionID: 2, Status: queue.StatusFailed, Output: `{"category":"application","kind":"k","message":"broke"}`,
		NewEvents: []string{event(t, 1, replay.EventOrchestrationStarted), event(t, 2, replay.EventOrchestrationFailed)}})

	execs, err := c.ListExecutions(ctx, "i")
	if err != nil || len(execs) != 2 {
		t.Fatalf("executions: %+v %v", execs, err)
	}
	if execs[0].Status != StateContinuedAsNew || execs[0].Output != "next" || execs[0].EventCount != 2 || execs[0].Failure != nil {
		t.Errorf("execution 1: %+v", execs[0])
	}
	if execs[1].Status != StateFailed || execs[1].Failure == nil || execs[1].Failure.Message != "broke" || execs[1].EndedAt.IsZero() {
		t.Errorf("execution 2: %+v", execs[1])
	}
	cur, err := c.ReadHistory(ctx, "i", 0)
	if err != nil || len(cur) != 2 || cur[1].Kind != EventOrchestrationFailed {
		t.Fatalf("current history: %+v %v", cur, err)
	}
	first, err := c.ReadHistory(ctx, "i", 1)
	if err != nil || len(first) != 2 || first[1].Kind != EventOrchestrationContinuedAsNew {
		t.Fatalf("history of execution 1: %+v %v", first, err)
	}
	if r, err := c.PruneExecutions(ctx, "i", PruneOptions{}); err != nil || r != (PruneResult{Instances: 1, Executions: 1, Events: 2}) {
		t.Fatalf("prune: %+v %v", r, err)
	}
	if _, err := c.ReadHistory(ctx, "i", 1); !errors.Is(err, ErrExecutionNotFound) {
		t.Errorf("pruned execution: err = %v", err)
	}
	if _, err := c.ReadHistory(ctx, "i", 3); !errors.Is(err, ErrExecutionNotFound) {
		t.Errorf("future execution: err = %v", err)
	}
}

func TestInstanceTreeAndListing(t *testing.T) {
	c, s := newTestClient(t)
	ctx := context.Background()
	child := func(id, parent string) queue.ChildStart {
		return queue.ChildStart{InstanceID: id, Name: "child", ParentInstanceID: parent, Bucket: "o:" + id, Message: "start"}
	}
	if err := s.CreateInstance(ctx, queue.CreateRequest{InstanceID: "root", Name: "parent", Bucket: "o:root", Message: "start"}); err != nil {
		t.Fatal(err)
	}
	turn(t, s, "root", queue.OrchestrationAck{Children: []queue.ChildStart{
		child("root-b", "root"), child("root-a", "root"),
		{InstanceID: "detached", Name: "other", Bucket: "o:detached", Message: "start"},
	}})
	turn(t, s, "root-a", queue.OrchestrationAck{Children: []queue.ChildStart{child("root-a-x", "root-a")}})
	turn(t, s, "root-b", queue.OrchestrationAck{Status: queue.StatusCompleted, Output: "b"})

	tree, err := c.GetInstanceTree(ctx, "root")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"root", "root-a", "root-b", "root-a-x"}; tree.RootID != "root" || !slices.Equal(tree.AllIDs, want) {
		t.Fatalf("tree %+v, want %v", tree, want)
	}
	sub, err := c.GetInstanceTree(ctx, "root-a")
	if err != nil || !slices.Equal(sub.AllIDs, []string{"root-a", "root-a-x"}) {
		t.Fatalf("subtree %+v %v", sub, err)
	}

	page, err := c.ListInstances(ctx, ListOptions{Status: StateCompleted})
	if err != nil || page.NextOffset != -1 || len(page.Instances) != 1 {
		t.Fatalf("completed: %+v %v", page, err)
	}
	if info := page.Instances[0]; info.InstanceID != "root-b" || info.Output != "b" || info.ParentInstanceID != "root" || info.OrchestrationName != "child" {
		t.Errorf("info %+v", info)
	}
	want, err := c.GetInstanceInfo(ctx, "root-b")
	if err != nil || want != page.Instances[0] {
		t.Errorf("listing and GetInstanceInfo disagree:\n%+v\n%+v (%v)", page.Instances[0], want, err)
	}
	all, err := c.ListInstances(ctx, ListOptions{Limit: 3})
	if err != nil || len(all.Instances) != 3 || all.NextOffset != 3 || all.Instances[0].InstanceID != "root" {
		t.Fatalf("first page: %+v %v", all, err)
	}

	if _, err := c.DeleteInstance(ctx, "root-a", false); !errors.Is(err, ErrCannotDeleteSubOrchestration) {
		t.Errorf("delete a child: %v", err)
	}
	if _, err := c.DeleteInstance(ctx, "root", false); !errors.Is(err, ErrInstanceRunning) {
		t.Errorf("delete a running root: %v", err)
	}
	res, err := c.DeleteInstance(ctx, "root", true)
	if err != nil || res.Instances != 4 {
		t.Fatalf("force delete: %+v %v", res, err)
	}
	m, err := c.GetSystemMetrics(ctx)
	if err != nil || m != (SystemMetrics{Pending: 1, Instances: 1}) {
		t.Errorf("metrics: %+v %v (the detached instance is left)", m, err)
	}
	d, err := c.GetQueueDepths(ctx)
	if err != nil || len(d.Orchestrations) != 1 || d.Orchestrations[0] != (BucketDepth{Bucket: "o:detached", Ready: 1, Unserved: true}) {
		t.Errorf("depths: %+v %v", d, err)
	}
}
