package queue

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// newInstance creates id alone in its own bucket "o:<id>".
func (e *env) newInstance(id string) {
	e.t.Helper()
	e.create(id, "o:"+id, "start")
}

// turnOf fetches the next turn of id, which waits alone in "o:<id>".
func (e *env) turnOf(id string) OrchestrationItem {
	e.t.Helper()
	return e.fetchOne("o:"+id, longLock)
}

// runTurn fetches id's next turn and acks it with ack (InstanceID and
// Token filled in).
func (e *env) runTurn(id string, ack OrchestrationAck) {
	e.t.Helper()
	it := e.turnOf(id)
	ack.InstanceID, ack.Token = id, it.Token
	e.ack(ack)
}

// metrics reads Store.Metrics.
func (e *env) metrics() SystemMetrics {
	e.t.Helper()
	m, err := e.s.Metrics(e.ctx)
	if err != nil {
		e.t.Fatalf("Metrics: %v", err)
	}
	return m
}

// checkIndices recomputes every management index from the raw keys and
// compares: the instances index against the instance hashes, the stats
// counters against the statuses, execution records and history lists, and
// each record's event count against its history. It returns the recount.
func (e *env) checkIndices() SystemMetrics {
	e.t.Helper()
	p := e.k.Prefix()
	keys, err := e.rdb.Keys(e.ctx, p+"*").Result()
	if err != nil {
		e.t.Fatalf("KEYS: %v", err)
	}
	var want SystemMetrics
	insts := map[string]bool{}
	hists := map[string]bool{}
	for _, key := range keys {
		switch {
		case strings.HasPrefix(key, p+kindInstance):
			insts[strings.TrimPrefix(key, p+kindInstance)] = true
		case strings.HasPrefix(key, p+kindHistory):
			hists[key] = true
		}
	}
	for id := range insts {
		rec := e.instance(id)
		want.Instances++
		switch rec.Status {
		case StatusPending:
			want.Pending++
		case StatusRunning:
			want.Running++
		case StatusCompleted:
			want.Completed++
		case StatusFailed:
			want.Failed++
		}
		if score, ok := e.zscore(e.k.instancesKey(), id); !ok || int64(score) != rec.CreatedAt.UnixMilli() {
			e.t.Errorf("instances index: %s score %v (present %v), want its creation time %d", id, score, ok, rec.CreatedAt.UnixMilli())
		}
		if score, ok := e.zscore(e.k.statusIndexKey(rec.Status), id); !ok || int64(score) != rec.CreatedAt.UnixMilli() {
			e.t.Errorf("status index %s: %s score %v (present %v), want its creation time %d", rec.Status, id, score, ok, rec.CreatedAt.UnixMilli())
		}
		execs, err := e.s.Executions(e.ctx, id)
		if err != nil {
			e.t.Fatalf("Executions(%s): %v", id, err)
		}
		for _, x := range execs {
			hk := e.k.HistoryKey(id, x.ExecutionID)
			n := len(e.lrange(hk))
			if x.Events != n {
				e.t.Errorf("%s execution %d: record says %d events, history has %d", id, x.ExecutionID, x.Events, n)
			}
			want.Executions++
			want.Events += int64(n)
			delete(hists, hk)
		}
		if rec.ExecutionID > 0 && (len(execs) == 0 || execs[len(execs)-1].ExecutionID != rec.ExecutionID) {
			e.t.Errorf("%s: no record of the current execution %d: %+v", id, rec.ExecutionID, execs)
		}
	}
	for hk := range hists {
		e.t.Errorf("history %s belongs to no execution record", hk)
	}
	members, err := e.rdb.ZRange(e.ctx, e.k.instancesKey(), 0, -1).Result()
	if err != nil {
		e.t.Fatalf("ZRANGE instances: %v", err)
	}
	for _, id := range members {
		if !insts[id] {
			e.t.Errorf("instances index lists %s, which does not exist", id)
		}
	}
	for _, st := range []string{StatusPending, StatusRunning, StatusCompleted, StatusFailed} {
		members, err := e.rdb.ZRange(e.ctx, e.k.statusIndexKey(st), 0, -1).Result()
		if err != nil {
			e.t.Fatalf("ZRANGE %s: %v", e.k.statusIndexKey(st), err)
		}
		for _, id := range members {
			if !insts[id] || e.instance(id).Status != st {
				e.t.Errorf("status index %s lists %s, which does not exist or has another status", st, id)
			}
		}
	}
	wantEqual(e.t, "metrics (recount vs counters)", want, e.metrics())
	return want
}

// execStatuses returns "<n>:<status>" for each stored execution.
func (e *env) execStatuses(id string) []string {
	e.t.Helper()
	execs, err := e.s.Executions(e.ctx, id)
	if err != nil {
		e.t.Fatalf("Executions(%s): %v", id, err)
	}
	out := make([]string, len(execs))
	for i, x := range execs {
		out[i] = fmt.Sprintf("%d:%s", x.ExecutionID, x.Status)
	}
	return out
}

// keysOf returns the keys that mention id (other than fetch records, which
// expire by themselves).
func (e *env) keysOf(id string) []string {
	e.t.Helper()
	keys, err := e.rdb.Keys(e.ctx, e.k.Prefix()+"*").Result()
	if err != nil {
		e.t.Fatalf("KEYS: %v", err)
	}
	var out []string
	for _, k := range keys {
		if strings.Contains(k, id) && !strings.Contains(k, ":fr:") {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func TestIndicesFollowTheLifecycle(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		e.newInstance("i1")
		rec := e.instance("i1")
		wantEqual(t, "after create", SystemMetrics{Pending: 1, Instances: 1}, e.checkIndices())
		wantEqual(t, "executions while Pending", []ExecutionRecord{}, mustExecutions(t, e, "i1"))

		e.advance(time.Second)
		e.runTurn("i1", OrchestrationAck{NewEvents: []string{"e1", "e2"}, Timers: []Timer{{DueAt: time.Now().Add(time.Hour), Body: "t"}}})
		wantEqual(t, "after first ack", SystemMetrics{Running: 1, Instances: 1, Executions: 1, Events: 2}, e.checkIndices())
		x := mustExecutions(t, e, "i1")
		if len(x) != 1 || x[0].Status != StatusRunning || x[0].Events != 2 || !x[0].EndedAt.IsZero() || x[0].Output != "" ||
			x[0].StartedAt.Before(rec.CreatedAt) {
			t.Fatalf("record after first ack: %+v", x)
		}
		started := x[0].StartedAt

		e.enqueue("i1", "m")
		e.advance(time.Second)
		e.runTurn("i1", OrchestrationAck{NewEvents: []string{"e3"}, Status: StatusCompleted, Output: "done"})
		wantEqual(t, "after completion", SystemMetrics{Completed: 1, Instances: 1, Executions: 1, Events: 3}, e.checkIndices())
		x = mustExecutions(t, e, "i1")
		if len(x) != 1 || x[0].Status != StatusCompleted || x[0].Events != 3 || x[0].Output != "done" ||
			!x[0].StartedAt.Equal(started) || x[0].EndedAt.Before(started) {
			t.Fatalf("record after completion: %+v", x)
		}
		if !e.b.Real && !x[0].EndedAt.Equal(e.now) {
			t.Errorf("EndedAt = %v, want the clock %v", x[0].EndedAt, e.now)
		}

		// A second instance fails at its first turn: Pending -> Failed.
		e.newInstance("i2")
		e.runTurn("i2", OrchestrationAck{NewEvents: []string{"s", "f"}, Status: StatusFailed, Output: "boom"})
		wantEqual(t, "after failure", SystemMetrics{Completed: 1, Failed: 1, Instances: 2, Executions: 2, Events: 5}, e.checkIndices())
		wantEqual(t, "i2 executions", []string{"1:Failed"}, e.execStatuses("i2"))

		_, err := e.s.Executions(e.ctx, "nope")
		wantErr(t, "Executions(nope)", err, ErrInstanceNotFound)
	})
}

func mustExecutions(t *testing.T, e *env, id string) []ExecutionRecord {
	t.Helper()
	x, err := e.s.Executions(e.ctx, id)
	if err != nil {
		t.Fatalf("Executions(%s): %v", id, err)
	}
	return x
}

func TestIndicesAcrossContinueAsNew(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		e.newInstance("eternal")
		for n := uint64(1); n <= 3; n++ {
			e.runTurn("eternal", OrchestrationAck{ExecutionID: n, NewEvents: []string{"start", "can"},
				Status: StatusContinuedAsNew, Output: fmt.Sprintf("input-%d", n+1), HeadMessages: []string{"restart"}})
			if st := e.instance("eternal").Status; st != StatusRunning {
				t.Fatalf("status after continue-as-new %d = %s, want Running", n, st)
			}
		}
		e.runTurn("eternal", OrchestrationAck{ExecutionID: 4, NewEvents: []string{"start"}})
		wantEqual(t, "executions", []string{"1:ContinuedAsNew", "2:ContinuedAsNew", "3:ContinuedAsNew", "4:Running"}, e.execStatuses("eternal"))
		x := mustExecutions(t, e, "eternal")
		if x[1].Output != "input-3" || x[1].EndedAt.IsZero() || x[3].Output != "" {
			t.Errorf("records: %+v", x)
		}
		wantEqual(t, "metrics", SystemMetrics{Running: 1, Instances: 1, Executions: 4, Events: 7}, e.checkIndices())
	})
}

func TestIndicesCountChildrenAndIgnoreRetriedAcks(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		e.newInstance("p")
		it := e.turnOf("p")
		ack := OrchestrationAck{InstanceID: "p", Token: it.Token, NewEvents: []string{"s", "sub", "sub", "det"},
			Children: []ChildStart{
				{InstanceID: "p::c1", Name: "child", ParentInstanceID: "p", Bucket: "o:p::c1", Message: "start"},
				{InstanceID: "p::c2", Name: "child", ParentInstanceID: "p", Bucket: "o:p::c2", Message: "start"},
				{InstanceID: "detached", Name: "other", Bucket: "o:detached", Message: "start"},
				{InstanceID: "p::c1", Name: "child", ParentInstanceID: "p", Bucket: "o:p::c1", Message: "start", CollisionMessage: "dup"},
			}}
		e.ack(ack)
		e.ack(ack) // a retried ack changes nothing
		wantEqual(t, "metrics", SystemMetrics{Pending: 3, Running: 1, Instances: 4, Executions: 1, Events: 4}, e.checkIndices())
		kids, err := e.s.Children(e.ctx, "p")
		wantErr(t, "Children(p)", err, nil)
		wantEqual(t, "children", []string{"p::c1", "p::c2"}, kids)
		kids, err = e.s.Children(e.ctx, "p::c1")
		wantErr(t, "Children(p::c1)", err, nil)
		wantEqual(t, "children of a leaf", []string{}, kids)
		_, err = e.s.Children(e.ctx, "nope")
		wantErr(t, "Children(nope)", err, ErrInstanceNotFound)

		e.runTurn("p::c1", OrchestrationAck{NewEvents: []string{"s", "done"}, Status: StatusCompleted})
		e.runTurn("p::c2", OrchestrationAck{NewEvents: []string{"s"}})
		wantEqual(t, "metrics after children ran", SystemMetrics{Pending: 1, Running: 2, Completed: 1, Instances: 4, Executions: 3, Events: 7}, e.checkIndices())
	})
}

func TestListInstances(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		// i00..i09, created in this order (ids sort the same way, for
		// equal milliseconds on a real server).
		var all []string
		for i := range 10 {
			id := fmt.Sprintf("i%02d", i)
			all = append(all, id)
			e.newInstance(id)
			e.advance(time.Millisecond)
		}
		e.runTurn("i01", OrchestrationAck{Status: StatusCompleted})
		e.runTurn("i04", OrchestrationAck{})
		e.runTurn("i05", OrchestrationAck{Status: StatusFailed})
		e.runTurn("i08", OrchestrationAck{Status: StatusCompleted})

		list := func(o ListOptions) ListPage {
			t.Helper()
			p, err := e.s.ListInstances(e.ctx, o)
			if err != nil {
				t.Fatalf("ListInstances(%+v): %v", o, err)
			}
			return p
		}
		wantEqual(t, "default page", ListPage{InstanceIDs: all, NextOffset: -1}, list(ListOptions{}))
		var got []string
		pages := 0
		for off := 0; off >= 0; pages++ {
			p := list(ListOptions{Offset: off, Limit: 3})
			got = append(got, p.InstanceIDs...)
			off = p.NextOffset
		}
		wantEqual(t, "paged", all, got)
		if pages != 4 {
			t.Errorf("pages = %d, want 4", pages)
		}
		wantEqual(t, "exact last page", ListPage{InstanceIDs: all[7:], NextOffset: -1}, list(ListOptions{Offset: 7, Limit: 3}))
		wantEqual(t, "past the end", ListPage{InstanceIDs: []string{}, NextOffset: -1}, list(ListOptions{Offset: 20}))

		tests := []struct {
			status string
			want   []string
		}{
			{StatusCompleted, []string{"i01", "i08"}},
			{StatusFailed, []string{"i05"}},
			{StatusRunning, []string{"i04"}},
			{StatusPending, []string{"i00", "i02", "i03", "i06", "i07", "i09"}},
		}
		for _, tt := range tests {
			wantEqual(t, tt.status, ListPage{InstanceIDs: tt.want, NextOffset: -1}, list(ListOptions{Status: tt.status}))
		}
		// A full filtered page stops right after its last match.
		wantEqual(t, "first completed", ListPage{InstanceIDs: []string{"i01"}, NextOffset: 2}, list(ListOptions{Status: StatusCompleted, Limit: 1}))
		wantEqual(t, "next completed", ListPage{InstanceIDs: []string{"i08"}, NextOffset: 9}, list(ListOptions{Status: StatusCompleted, Offset: 2, Limit: 1}))

		// Filtered pages are read from the status index: full until the last.
		wantEqual(t, "pending page 1", ListPage{InstanceIDs: []string{"i00", "i02"}, NextOffset: 3}, list(ListOptions{Status: StatusPending, Limit: 2}))
		wantEqual(t, "pending page 2", ListPage{InstanceIDs: []string{"i03", "i06"}, NextOffset: 7}, list(ListOptions{Status: StatusPending, Offset: 3, Limit: 2}))
		wantEqual(t, "pending page 3", ListPage{InstanceIDs: []string{"i07", "i09"}, NextOffset: -1}, list(ListOptions{Status: StatusPending, Offset: 7, Limit: 2}))
		wantEqual(t, "offset inside a run of others", ListPage{InstanceIDs: []string{"i05"}, NextOffset: -1}, list(ListOptions{Status: StatusFailed, Offset: 2}))
		wantEqual(t, "offset past the last match", ListPage{InstanceIDs: []string{}, NextOffset: -1}, list(ListOptions{Status: StatusFailed, Offset: 6}))
		wantEqual(t, "offset past the end", ListPage{InstanceIDs: []string{}, NextOffset: -1}, list(ListOptions{Status: StatusFailed, Offset: 10}))

		for _, bad := range []ListOptions{{Status: "Done"}, {Status: StatusContinuedAsNew}, {Offset: -1}, {Limit: -1}} {
			if _, err := e.s.ListInstances(e.ctx, bad); err == nil {
				t.Errorf("ListInstances(%+v) accepted", bad)
			}
		}
		recs, err := e.s.Instances(e.ctx, []string{"i09", "gone", "i01"})
		if err != nil || len(recs) != 2 || recs[0].InstanceID != "i09" || recs[1].Status != StatusCompleted {
			t.Fatalf("Instances: %+v, %v", recs, err)
		}
	})
}

func TestListInstancesClampsLimit(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		for i := range MaxListLimit + 5 {
			// Raw index entries are enough for an unfiltered listing.
			if err := e.rdb.ZAdd(e.ctx, e.k.instancesKey(), redisZ(float64(i), fmt.Sprintf("z%05d", i))).Err(); err != nil {
				t.Fatal(err)
			}
		}
		p, err := e.s.ListInstances(e.ctx, ListOptions{Limit: 5000})
		if err != nil || len(p.InstanceIDs) != MaxListLimit || p.NextOffset != MaxListLimit {
			t.Fatalf("got %d ids, next %d, err %v; want %d, %d", len(p.InstanceIDs), p.NextOffset, err, MaxListLimit, MaxListLimit)
		}
		p, err = e.s.ListInstances(e.ctx, ListOptions{})
		if err != nil || len(p.InstanceIDs) != DefaultListLimit {
			t.Fatalf("default limit: %d ids, %v", len(p.InstanceIDs), err)
		}
	})
}

// buildTree makes root with two children, one of which has a grandchild;
// each instance has run one turn with an activity in flight. Returns the ids.
func (e *env) buildTree(root string) []string {
	e.t.Helper()
	child := func(id, parent string) ChildStart {
		return ChildStart{InstanceID: id, Name: "c", ParentInstanceID: parent, Bucket: "o:" + id, Message: "start"}
	}
	e.newInstance(root)
	e.runTurn(root, OrchestrationAck{NewEvents: []string{"s", "a", "c", "c"},
		Activities: []WorkItem{{Bucket: "a:work", Body: "w", ExecutionID: 1, EventID: 2}},
		Children:   []ChildStart{child(root+"/a", root), child(root+"/b", root)}})
	e.runTurn(root+"/a", OrchestrationAck{NewEvents: []string{"s", "c"}, Children: []ChildStart{child(root+"/a/x", root+"/a")}})
	e.runTurn(root+"/b", OrchestrationAck{NewEvents: []string{"s", "a"},
		Activities: []WorkItem{{Bucket: "a:work", Body: "w", ExecutionID: 1, EventID: 2}}})
	return []string{root, root + "/a", root + "/b", root + "/a/x"}
}

func TestDeleteInstanceRefusals(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		ids := e.buildTree("r")
		before := e.checkIndices()

		_, err := e.s.DeleteInstance(e.ctx, "nope", true)
		wantErr(t, "delete missing", err, ErrInstanceNotFound)
		_, err = e.s.DeleteInstance(e.ctx, "r/a", true)
		wantErr(t, "delete sub-orchestration", err, ErrCannotDeleteSubOrchestration)
		if !strings.Contains(err.Error(), "delete its root instead") {
			t.Errorf("error %q does not say to delete the root", err)
		}
		_, err = e.s.DeleteInstance(e.ctx, "r", false)
		wantErr(t, "delete running", err, ErrInstanceRunning)
		if !strings.Contains(err.Error(), ": r") {
			t.Errorf("error %q does not name the running instance", err)
		}
		// End everything but the grandchild: the refusal names it.
		e.enqueue("r", "m")
		e.runTurn("r", OrchestrationAck{Status: StatusCompleted})
		e.enqueue("r/a", "m")
		e.runTurn("r/a", OrchestrationAck{Status: StatusCompleted})
		e.enqueue("r/b", "m")
		e.runTurn("r/b", OrchestrationAck{Status: StatusFailed})
		_, err = e.s.DeleteInstance(e.ctx, "r", false)
		wantErr(t, "delete with a pending grandchild", err, ErrInstanceRunning)
		if !strings.HasSuffix(err.Error(), ": r/a/x") {
			t.Errorf("error %q does not name r/a/x", err)
		}
		for _, id := range ids {
			if _, err := e.s.Instance(e.ctx, id); err != nil {
				t.Errorf("%s after refused deletes: %v", id, err)
			}
		}
		if after := e.checkIndices(); after.Instances != before.Instances {
			t.Errorf("refusals changed the instance count: %+v -> %+v", before, after)
		}

		e.s.lim.maxTree = 3
		_, err = e.s.DeleteInstance(e.ctx, "r", true)
		wantErr(t, "tree over the size bound", err, ErrTreeTooLarge)
		e.s.lim = defaultLimits
		e.s.lim.maxCost = 5
		_, err = e.s.DeleteInstance(e.ctx, "r", true)
		wantErr(t, "tree over the cost bound", err, ErrTreeTooLarge)
		e.s.lim = defaultLimits
		e.checkIndices()
	})
}

func TestDeleteInstanceCascades(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		ids := e.buildTree("tree1")
		e.buildTree("tree2")
		e.enqueue("tree1/a", "waiting")
		e.enqueue("tree1", "m")
		e.runTurn("tree1", OrchestrationAck{ExecutionID: 1, Status: StatusContinuedAsNew, HeadMessages: []string{"restart"}, NewEvents: []string{"can"},
			KV: []KVOp{{Op: KVSet, Key: "k", Value: "v"}}})
		e.runTurn("tree1", OrchestrationAck{ExecutionID: 2, NewEvents: []string{"s2"}, Timers: []Timer{{DueAt: e.serverNow().Add(e.shortLock()), Body: "t"}}})
		before := e.checkIndices()

		res, err := e.s.DeleteInstance(e.ctx, "tree1", true)
		wantErr(t, "force delete", err, nil)
		// tree1: executions 1 (s a c c can) and 2 (s2); /a: s c; /b: s a;
		// /a/x: none. Queue messages: /a's inbox message, /a/x's start, and
		// the work items of tree1 and /b.
		want := DeleteResult{Instances: 4, Executions: 4, Events: 10, QueueMessages: 4}
		wantEqual(t, "result", want, res)
		for _, id := range ids {
			if left := e.keysOf(id); len(left) != 0 {
				t.Errorf("keys left for %s: %v", id, left)
			}
			wantErr(t, "ack of "+id, e.s.AckOrchestration(e.ctx, OrchestrationAck{InstanceID: id, Token: "t", ExecutionID: 1, Status: StatusRunning}), ErrInstanceNotFound)
		}
		after := e.checkIndices()
		wantEqual(t, "metrics moved by the result", SystemMetrics{
			Running: before.Running - 3, Pending: before.Pending - 1, Instances: before.Instances - 4,
			Executions: before.Executions - 4, Events: before.Events - 10,
		}, after)
		// The other tree's work item is all that is left in a:work.
		n, _ := e.rdb.XLen(e.ctx, e.k.WorkStreamKey("a:work")).Result()
		if n != 2 {
			t.Errorf("a:work holds %d items, want the other tree's 2", n)
		}
		// The deleted instance's timer is dropped when it falls due.
		if n, _ := e.rdb.ZCard(e.ctx, e.k.timersKey()).Result(); n != 1 {
			t.Fatalf("timers = %d, want 1 (left for promotion)", n)
		}
		e.after(e.shortLock()+time.Second, "timer promoted and dropped", func() bool {
			e.fetch(FetchOrchestrationsRequest{Buckets: []string{"o:none"}})
			n, _ := e.rdb.ZCard(e.ctx, e.k.timersKey()).Result()
			return n == 0
		})
		if left := e.keysOf("tree1"); len(left) != 0 {
			t.Errorf("keys after the timer fired: %v", left)
		}
		e.checkIndices()
	})
}

func TestDeleteInstanceDuringATurn(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		e.newInstance("busy")
		e.runTurn("busy", OrchestrationAck{NewEvents: []string{"s"},
			Activities: []WorkItem{{Bucket: "a:slow", Body: "w", ExecutionID: 1, EventID: 2}}})
		work, err := e.s.FetchWork(e.ctx, FetchWorkRequest{Buckets: []string{"a:slow"}, Max: 1, LockTimeout: longLock})
		if err != nil || len(work.Items) != 1 {
			t.Fatalf("FetchWork: %+v %v", work, err)
		}
		e.enqueue("busy", "m")
		it := e.turnOf("busy") // a turn in flight

		res, err := e.s.DeleteInstance(e.ctx, "busy", true)
		wantErr(t, "delete", err, nil)
		wantEqual(t, "result", DeleteResult{Instances: 1, Executions: 1, Events: 1, QueueMessages: 2}, res)

		// The turn cannot commit, nor recreate anything.
		err = e.s.AckOrchestration(e.ctx, OrchestrationAck{InstanceID: "busy", Token: it.Token, ExecutionID: 1, Status: StatusRunning,
			NewEvents: []string{"late"}, Activities: []WorkItem{{Bucket: "a:slow", Body: "again"}}, KV: []KVOp{{Op: KVSet, Key: "k", Value: "v"}},
			Children: []ChildStart{{InstanceID: "busy-child", Name: "c", ParentInstanceID: "busy", Bucket: "o:c", Message: "s"}}})
		wantErr(t, "in-flight ack", err, ErrInstanceNotFound)
		wantErr(t, "in-flight renew", e.s.RenewOrchestrationLock(e.ctx, "busy", it.Token, longLock), ErrInstanceNotFound)
		wantErr(t, "in-flight abandon", e.s.AbandonOrchestration(e.ctx, "busy", it.Token, 0, false), ErrInstanceNotFound)
		// The running activity lost its item: its worker cancels it.
		w := work.Items[0]
		wantErr(t, "renew of the activity", e.s.RenewWork(e.ctx, w.ID, w.Token, longLock), ErrWorkNotFound)
		wantErr(t, "ack of the activity", e.s.AckWork(e.ctx, w.ID, w.Token, "result"), ErrWorkNotFound)
		if left := e.keysOf("busy"); len(left) != 0 {
			t.Errorf("keys left: %v", left)
		}
		wantEqual(t, "metrics", SystemMetrics{}, e.checkIndices())

		// The id can be used again, from scratch.
		e.newInstance("busy")
		wantEqual(t, "executions of the new instance", []ExecutionRecord{}, mustExecutions(t, e, "busy"))
		wantEqual(t, "metrics after recreate", SystemMetrics{Pending: 1, Instances: 1}, e.checkIndices())
	})
}

func TestDeleteOrphanedSubOrchestration(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		// CreateInstance with a parent does not register the child, so
		// deleting the parent leaves it: it can then be deleted itself.
		e.newInstance("parent")
		wantErr(t, "create", e.s.CreateInstance(e.ctx, CreateRequest{InstanceID: "stray", Name: "c", ParentInstanceID: "parent", Bucket: "o:stray", Message: "s"}), nil)
		_, err := e.s.DeleteInstance(e.ctx, "stray", true)
		wantErr(t, "delete while the parent exists", err, ErrCannotDeleteSubOrchestration)
		if _, err := e.s.DeleteInstance(e.ctx, "parent", true); err != nil {
			t.Fatal(err)
		}
		_, err = e.s.DeleteInstance(e.ctx, "stray", false)
		wantErr(t, "delete Pending orphan without force", err, ErrInstanceRunning)
		res, err := e.s.DeleteInstance(e.ctx, "stray", true)
		wantErr(t, "delete orphan", err, nil)
		wantEqual(t, "result", DeleteResult{Instances: 1, QueueMessages: 1}, res)
		wantEqual(t, "metrics", SystemMetrics{}, e.checkIndices())
	})
}

// endTree ends every instance of a tree built by buildTree.
func (e *env) endTree(ids []string) {
	e.t.Helper()
	for _, id := range ids {
		e.enqueue(id, "m")
		e.runTurn(id, OrchestrationAck{Status: StatusCompleted})
	}
}

func TestDeleteInstancesBulk(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		// old1, old2: ended trees; cut; new1: ended tree after the cut;
		// running: a running root; halfway: an ended root with a running child;
		// single: an ended root without children.
		old1 := e.buildTree("old1")
		e.endTree(old1)
		old2 := e.buildTree("old2")
		e.endTree(old2)
		e.advance(time.Second)
		if e.b.Real {
			time.Sleep(5 * time.Millisecond)
		}
		cut := e.serverNow()
		e.advance(time.Second)
		if e.b.Real {
			time.Sleep(5 * time.Millisecond)
		}
		new1 := e.buildTree("new1")
		e.endTree(new1)
		e.buildTree("running")
		halfway := e.buildTree("halfway")
		e.enqueue(halfway[0], "m")
		e.runTurn(halfway[0], OrchestrationAck{Status: StatusCompleted})
		e.newInstance("single")
		e.runTurn("single", OrchestrationAck{NewEvents: []string{"s", "done"}, Status: StatusFailed})

		del := func(f BulkDeleteFilter) DeleteResult {
			t.Helper()
			r, err := e.s.DeleteInstances(e.ctx, f)
			if err != nil {
				t.Fatalf("DeleteInstances(%+v): %v", f, err)
			}
			e.checkIndices()
			return r
		}
		exists := func(id string) bool { return e.exists(e.k.InstanceKey(id)) }

		// Explicit ids: sub-orchestrations, running roots, roots with a
		// running child and unknown ids are skipped; the cut keeps new1.
		r := del(BulkDeleteFilter{InstanceIDs: []string{"old1/a", "running", "halfway", "nope", "new1", "old1"}, CompletedBefore: cut})
		// Queue messages: the work items of old1 and old1/b, never completed.
		wantEqual(t, "ids, before the cut", DeleteResult{Instances: 4, Executions: 4, Events: 8, QueueMessages: 2}, r)
		if exists("old1") || !exists("new1") || !exists("halfway") || !exists("running") || !exists("old2") {
			t.Fatal("wrong instances deleted")
		}

		// Scan with a limit of one root, in pages of two entries.
		e.s.lim.bulkWork = 2
		r = del(BulkDeleteFilter{Limit: 1})
		if r.Instances != 4 || exists("old2") || !exists("new1") {
			t.Fatalf("limit 1: %+v, old2 %v new1 %v", r, exists("old2"), exists("new1"))
		}
		// Scan everything that is eligible: new1 and single.
		r = del(BulkDeleteFilter{})
		wantEqual(t, "scan", DeleteResult{Instances: 5, Executions: 5, Events: 10, QueueMessages: 2}, r)
		var left []string
		for off := 0; off >= 0; {
			p, err := e.s.ListInstances(e.ctx, ListOptions{Offset: off})
			if err != nil {
				t.Fatal(err)
			}
			left = append(left, p.InstanceIDs...)
			off = p.NextOffset
		}
		sort.Strings(left)
		wantEqual(t, "left", []string{"halfway", "halfway/a", "halfway/a/x", "halfway/b", "running", "running/a", "running/a/x", "running/b"}, left)
		if r := del(BulkDeleteFilter{}); r != (DeleteResult{}) {
			t.Fatalf("second scan deleted %+v", r)
		}
		if _, err := e.s.DeleteInstances(e.ctx, BulkDeleteFilter{Limit: -1}); err == nil {
			t.Error("negative limit accepted")
		}
	})
}

func TestDeleteInstancesBulkPagesOverMany(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		// 30 roots, each with one child, interleaved with running ones; the
		// scan looks at 4 entries per call and ids go 3 per call.
		var ids []string
		for i := range 30 {
			id := fmt.Sprintf("r%02d", i)
			e.newInstance(id)
			if i%3 == 2 {
				e.runTurn(id, OrchestrationAck{})
				continue
			}
			e.runTurn(id, OrchestrationAck{Status: StatusCompleted, NewEvents: []string{"s"},
				Children: []ChildStart{{InstanceID: id + "/c", Name: "c", ParentInstanceID: id, Bucket: "o:" + id + "/c", Message: "s"}}})
			e.runTurn(id+"/c", OrchestrationAck{Status: StatusCompleted})
			ids = append(ids, id)
		}
		e.s.lim.bulkWork, e.s.lim.bulkIDs = 4, 3
		r, err := e.s.DeleteInstances(e.ctx, BulkDeleteFilter{InstanceIDs: ids[:5]})
		wantErr(t, "ids", err, nil)
		wantEqual(t, "ids result", DeleteResult{Instances: 10, Executions: 10, Events: 5}, r)
		r, err = e.s.DeleteInstances(e.ctx, BulkDeleteFilter{Limit: 7})
		wantErr(t, "scan 7", err, nil)
		if r.Instances != 14 {
			t.Fatalf("limit 7 deleted %+v", r)
		}
		e.s.lim.maxCost = 12 // two trees (cost 6 each) per call at most
		r, err = e.s.DeleteInstances(e.ctx, BulkDeleteFilter{})
		wantErr(t, "scan rest", err, nil)
		if r.Instances != 16 {
			t.Fatalf("rest deleted %+v", r)
		}
		wantEqual(t, "metrics", SystemMetrics{Running: 10, Instances: 10, Executions: 10}, e.checkIndices())
	})
}

func TestPruneExecutions(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		e.newInstance("e")
		for n := uint64(1); n <= 5; n++ {
			e.advance(time.Second)
			if e.b.Real {
				time.Sleep(3 * time.Millisecond) // distinct end times
			}
			e.runTurn("e", OrchestrationAck{ExecutionID: n, NewEvents: []string{"s", "x", "can"}, Status: StatusContinuedAsNew,
				HeadMessages: []string{"restart"}, KV: []KVOp{{Op: KVSet, Key: "n", Value: strconv.FormatUint(n, 10)}}})
		}
		e.runTurn("e", OrchestrationAck{ExecutionID: 6, NewEvents: []string{"s"}})
		prune := func(o PruneOptions) PruneResult {
			t.Helper()
			r, err := e.s.PruneExecutions(e.ctx, "e", o)
			if err != nil {
				t.Fatalf("PruneExecutions(%+v): %v", o, err)
			}
			e.checkIndices()
			return r
		}
		x := mustExecutions(t, e, "e")
		wantEqual(t, "keep 4", PruneResult{Instances: 1, Executions: 2, Events: 6}, prune(PruneOptions{KeepLast: 4}))
		wantEqual(t, "after keep 4", []string{"3:ContinuedAsNew", "4:ContinuedAsNew", "5:ContinuedAsNew", "6:Running"}, e.execStatuses("e"))
		// Only executions that ended before execution 4 did.
		wantEqual(t, "before", PruneResult{Instances: 1, Executions: 1, Events: 3}, prune(PruneOptions{CompletedBefore: x[3].EndedAt}))
		wantEqual(t, "after before", []string{"4:ContinuedAsNew", "5:ContinuedAsNew", "6:Running"}, e.execStatuses("e"))
		e.s.lim.prune = 1 // one execution per call: the method loops
		wantEqual(t, "keep current", PruneResult{Instances: 1, Executions: 2, Events: 6}, prune(PruneOptions{}))
		wantEqual(t, "after keep current", []string{"6:Running"}, e.execStatuses("e"))
		wantEqual(t, "nothing left", PruneResult{Instances: 1}, prune(PruneOptions{KeepLast: 1}))
		if v, ok, err := e.s.KV(e.ctx, "e", "n"); err != nil || !ok || v != "5" {
			t.Errorf("KV after prune: %q %v %v, want 5", v, ok, err)
		}
		if got := e.history("e", 6); len(got) != 1 {
			t.Errorf("current history = %v", got)
		}

		// A completed instance keeps its last (current) execution too.
		e.enqueue("e", "m")
		e.runTurn("e", OrchestrationAck{ExecutionID: 6, Status: StatusCompleted})
		wantEqual(t, "completed", PruneResult{Instances: 1}, prune(PruneOptions{}))
		wantEqual(t, "completed keeps", []string{"6:Completed"}, e.execStatuses("e"))

		_, err := e.s.PruneExecutions(e.ctx, "nope", PruneOptions{})
		wantErr(t, "prune missing", err, ErrInstanceNotFound)
		_, err = e.s.PruneExecutions(e.ctx, "e", PruneOptions{KeepLast: -1})
		if err == nil {
			t.Error("negative KeepLast accepted")
		}
	})
}

func TestPruneNeverDeletesRunningExecutions(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		// Execution 1 never ended (a new start replaced it): its record
		// stays Running and is never pruned.
		e.newInstance("r")
		e.runTurn("r", OrchestrationAck{ExecutionID: 1, NewEvents: []string{"s"}})
		e.enqueue("r", "restart")
		e.runTurn("r", OrchestrationAck{ExecutionID: 2, NewEvents: []string{"s", "can"}, Status: StatusContinuedAsNew, HeadMessages: []string{"again"}})
		e.runTurn("r", OrchestrationAck{ExecutionID: 3, NewEvents: []string{"s"}})
		r, err := e.s.PruneExecutions(e.ctx, "r", PruneOptions{})
		wantErr(t, "prune", err, nil)
		wantEqual(t, "result", PruneResult{Instances: 1, Executions: 1, Events: 2}, r)
		wantEqual(t, "left", []string{"1:Running", "3:Running"}, e.execStatuses("r"))
		e.checkIndices()
	})
}

func TestQueueDepths(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		depths := func() QueueDepths {
			t.Helper()
			d, err := e.s.QueueDepths(e.ctx)
			if err != nil {
				t.Fatalf("QueueDepths: %v", err)
			}
			return d
		}
		wantEqual(t, "empty", QueueDepths{}, depths())

		// Orchestrations in o:b: one ready, one locked, one delayed.
		for _, id := range []string{"a-locked", "b-delayed", "c-ready"} {
			e.create(id, "o:b", "start")
			e.advance(time.Millisecond)
		}
		got := e.fetch(FetchOrchestrationsRequest{Buckets: []string{"o:b"}, Max: 2})
		if len(got.Items) != 2 || got.Items[0].InstanceID != "a-locked" {
			t.Fatalf("fetch: %+v", got.Items)
		}
		wantErr(t, "abandon", e.s.AbandonOrchestration(e.ctx, "b-delayed", got.Items[1].Token, time.Hour, false), nil)
		// An instance in o:other whose lock expired counts as ready.
		e.create("expired", "o:other", "start")
		e.fetch(FetchOrchestrationsRequest{Buckets: []string{"o:other"}, LockTimeout: e.shortLock()})
		// Work: a:x with one ready and one locked item, t:gpu#x with one ready.
		e.create("sched", "o:sched", "start")
		e.runTurn2("sched", "o:sched", OrchestrationAck{Activities: []WorkItem{
			{Bucket: "a:x", Body: "1"}, {Bucket: "a:x", Body: "2"}, {Bucket: "t:gpu#x", Body: "3"},
		}, Timers: []Timer{{DueAt: e.serverNow().Add(time.Hour), Body: "t"}}})
		if w, err := e.s.FetchWork(e.ctx, FetchWorkRequest{Buckets: []string{"a:x"}, Max: 1, LockTimeout: longLock}); err != nil || len(w.Items) != 1 {
			t.Fatalf("FetchWork: %+v %v", w, err)
		}
		// A live node serves o:b and a:x; nobody serves o:other or t:gpu#x.
		wantErr(t, "advertise", e.s.AdvertiseNode(e.ctx, "n1", []string{"o:b", "a:x"}, time.Hour), nil)
		wantErr(t, "advertise", e.s.AdvertiseNode(e.ctx, "gone", []string{"o:other", "t:gpu#x"}, e.shortLock()), nil)

		var d QueueDepths
		e.after(e.shortLock()+time.Second, "lock and node expired", func() bool {
			d = depths()
			return len(d.Orchestrations) == 2 && d.Orchestrations[1].Ready == 1 && d.Orchestrations[1].Unserved
		})
		wantEqual(t, "depths", QueueDepths{
			Orchestrations: []BucketDepth{
				{Bucket: "o:b", Ready: 1, Delayed: 1, Locked: 1},
				{Bucket: "o:other", Ready: 1, Unserved: true},
			},
			Activities: []BucketDepth{
				{Bucket: "a:x", Ready: 1, Locked: 1},
				{Bucket: "t:gpu#x", Ready: 1, Unserved: true},
			},
			Timers: 1,
		}, d)

		// With too small an inspection budget, uninspected entries count as delayed.
		e.s.lim.depths = 1
		d = depths()
		if !d.Partial || d.Orchestrations[0] != (BucketDepth{Bucket: "o:b", Ready: 1, Delayed: 1, Locked: 1}) ||
			d.Activities[0] != (BucketDepth{Bucket: "a:x", Ready: 1, Delayed: 1}) {
			t.Fatalf("partial depths: %+v", d)
		}
	})
}

// runTurn2 is runTurn for an instance waiting alone in bucket.
func (e *env) runTurn2(id, bucket string, ack OrchestrationAck) {
	e.t.Helper()
	it := e.fetchOne(bucket, longLock)
	ack.InstanceID, ack.Token = id, it.Token
	e.ack(ack)
}

// TestExecutionRecordFormat pins the JSON form documented in
// docs/redis-layout.md.
func TestExecutionRecordFormat(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		e.newInstance("f")
		e.runTurn("f", OrchestrationAck{NewEvents: []string{"s", "done"}, Status: StatusCompleted, Output: "out"})
		h := e.hgetall(e.k.executionsKey("f"))
		var rec map[string]any
		if err := json.Unmarshal([]byte(h["1"]), &rec); err != nil {
			t.Fatalf("record %q: %v", h["1"], err)
		}
		if rec["status"] != "Completed" || rec["events"] != float64(2) || rec["start"].(float64) <= 0 || rec["end"].(float64) < rec["start"].(float64) {
			t.Errorf("record = %s", h["1"])
		}
		wantEqual(t, "fields", 2, len(h))
		wantEqual(t, "output", "out", h["1:out"])
	})
}

// TestTimerOfADeletedInstanceSkipsItsSuccessor: a timer left behind by a
// deleted instance is not delivered to a new instance created with the same
// id; the new instance's own timers are.
func TestTimerOfADeletedInstanceSkipsItsSuccessor(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		due := e.serverNow().Add(e.shortLock())
		e.newInstance("again")
		e.runTurn("again", OrchestrationAck{NewEvents: []string{"s"}, Timers: []Timer{{DueAt: due, Body: "old-timer"}}})
		if _, err := e.s.DeleteInstance(e.ctx, "again", true); err != nil {
			t.Fatal(err)
		}
		e.newInstance("again")
		e.runTurn("again", OrchestrationAck{NewEvents: []string{"s"}, Timers: []Timer{{DueAt: due, Body: "new-timer"}}})
		e.after(e.shortLock()+time.Second, "both timers promoted", func() bool {
			e.fetch(FetchOrchestrationsRequest{Buckets: []string{"o:none"}})
			n, _ := e.rdb.ZCard(e.ctx, e.k.timersKey()).Result()
			return n == 0
		})
		wantEqual(t, "inbox", []string{"new-timer"}, e.lrange(e.k.InboxKey("again")))
	})
}

// TestQueueDepthsCountOnlyLiveTimers: timers of a deleted instance, of an
// ended one and of an earlier instance with the same id are dropped when
// they fall due, so QueueDepths does not count them as waiting (issue 8,
// defect 11).
func TestQueueDepthsCountOnlyLiveTimers(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		timers := func() (int, bool) {
			t.Helper()
			d, err := e.s.QueueDepths(e.ctx)
			if err != nil {
				t.Fatalf("QueueDepths: %v", err)
			}
			return d.Timers, d.Partial
		}
		later := func() []Timer { return []Timer{{DueAt: e.serverNow().Add(time.Hour), Body: "t"}} }
		for _, id := range []string{"live", "deleted", "ended", "again"} {
			e.newInstance(id)
			e.runTurn(id, OrchestrationAck{Timers: later()})
		}
		if n, _ := timers(); n != 4 {
			t.Fatalf("timers = %d, want 4", n)
		}
		// deleted: gone; ended: Completed; again: deleted and created anew
		// with one timer of its own.
		e.enqueue("deleted", "m")
		e.runTurn("deleted", OrchestrationAck{Status: StatusCompleted})
		if _, err := e.s.DeleteInstance(e.ctx, "deleted", false); err != nil {
			t.Fatal(err)
		}
		e.enqueue("ended", "m")
		e.runTurn("ended", OrchestrationAck{Status: StatusCompleted})
		if _, err := e.s.DeleteInstance(e.ctx, "again", true); err != nil {
			t.Fatal(err)
		}
		e.newInstance("again")
		e.runTurn("again", OrchestrationAck{Timers: later()})
		if n := e.rdb.ZCard(e.ctx, e.k.timersKey()).Val(); n != 5 {
			t.Fatalf("ZCARD timers = %d, want 5", n)
		}
		if n, partial := timers(); n != 2 || partial {
			t.Fatalf("timers = %d (partial %v), want 2: live's and again's new one", n, partial)
		}
		// Past the inspection budget the rest count unchecked.
		e.s.lim.depthsTimers = 2
		if n, partial := timers(); !partial || n < 2 || n > 5 {
			t.Fatalf("with a budget of 2: timers = %d, partial %v", n, partial)
		}
	})
}
