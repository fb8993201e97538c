package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Errors of the management operations. Returned errors wrap them with the
// instance concerned; test with errors.Is.
var (
	// ErrInstanceRunning is returned by DeleteInstance without force when an
	// instance of the tree is Pending or Running; the error names it.
	ErrInstanceRunning = errors.New("instance is still running")
	// ErrCannotDeleteSubOrchestration is returned by DeleteInstance for an
	// instance whose parent exists: delete its root instead, which deletes
	// the whole tree.
	ErrCannotDeleteSubOrchestration = errors.New("cannot delete a sub-orchestration")
	// ErrTreeTooLarge is returned by DeleteInstance when the tree has more
	// than MaxTreeSize instances, or deleting it would touch more than
	// MaxDeleteCost records (prune its executions first).
	ErrTreeTooLarge = errors.New("instance tree too large")
)

// Bounds of the management operations. Every script does bounded work per
// call, a few milliseconds at most (docs/operations.md, "Management at
// scale"); the Go methods loop over calls where an operation needs more, so
// that other clients' commands run between them.
const (
	// DefaultListLimit is the page size of ListInstances when Limit is zero.
	DefaultListLimit = 100
	// MaxListLimit is the largest page ListInstances returns.
	MaxListLimit = 1000
	// MaxTreeSize is the largest instance tree (an instance and its
	// sub-orchestrations, recursively) that can be deleted or listed.
	MaxTreeSize = 10000
	// MaxDeleteCost bounds what one delete script touches: instances plus
	// execution records plus in-flight work items.
	MaxDeleteCost = 100000
	// DefaultBulkDeleteLimit is the number of root instances DeleteInstances
	// deletes at most when BulkDeleteFilter.Limit is zero.
	DefaultBulkDeleteLimit = 1000
	// bulkWork is the work budget of one bulk delete call: each candidate
	// looked at costs 1, each tree deleted its cost (instances + execution
	// records + work items). A tree that alone exceeds it is deleted by a
	// call of its own.
	bulkWork = 100
	// bulkIDsPage is how many given ids one bulk delete call receives.
	bulkIDsPage = 100
	// pruneBatch is how many executions one prune call deletes at most.
	pruneBatch = 100
	// pruneRead is how many execution ids one prune call looks at, at most.
	pruneRead = 1000
	// depthsInspect is how many entries due later QueueDepths inspects.
	depthsInspect = 2000
	// depthsTimers is how many timers QueueDepths inspects.
	depthsTimers = 2000
)

// mapScriptErrorDetail is mapScriptError keeping the script's detail (what
// follows the code) after the sentinel.
func mapScriptErrorDetail(err error) error {
	mapped := mapScriptError(err)
	if mapped == err {
		return err
	}
	msg := err.Error()
	if i := strings.IndexByte(msg, ' '); i >= 0 {
		return fmt.Errorf("%w: %s", mapped, msg[i+1:])
	}
	return mapped
}

// ListOptions selects a page of ListInstances.
type ListOptions struct {
	// Status keeps only instances in this status: Pending, Running,
	// Completed or Failed. If empty, all instances are listed.
	Status string
	// Offset is where the page starts: 0, or the NextOffset of the previous
	// page. It is a position in the creation-time index, not a count of
	// matching instances.
	Offset int
	// Limit is the largest number of ids returned. If zero,
	// DefaultListLimit; values above MaxListLimit are lowered to it.
	Limit int
}

// ListPage is one page of instance ids.
type ListPage struct {
	InstanceIDs []string
	// NextOffset is the Offset of the next page, -1 when there is none.
	NextOffset int
}

// ListInstances returns instance ids oldest first (by creation time), in
// one script call of O(log N + Limit) work. With a Status filter the page is
// read from the per-status index, so a page is short only when it is the
// last one (NextOffset -1); a full page may still be followed by an empty
// last one. Offsets are positions in the live creation-time index, with or
// without a filter: instances deleted between two calls shift later ones
// down, so a page may skip some of them; instances created meanwhile come
// last; instances that change status between two calls are listed if their
// status at the time of the call matches.
func (s *Store) ListInstances(ctx context.Context, opts ListOptions) (ListPage, error) {
	switch opts.Status {
	case "", StatusPending, StatusRunning, StatusCompleted, StatusFailed:
	default:
		return ListPage{}, fmt.Errorf("listing instances: invalid status %q", opts.Status)
	}
	if opts.Offset < 0 || opts.Limit < 0 {
		return ListPage{}, fmt.Errorf("listing instances: negative offset %d or limit %d", opts.Offset, opts.Limit)
	}
	limit := opts.Limit
	if limit == 0 {
		limit = DefaultListLimit
	}
	limit = min(limit, MaxListLimit)
	k := s.keys
	keys := []string{k.Prefix(), k.instancesKey()}
	if opts.Status != "" {
		keys = append(keys, k.statusIndexKey(opts.Status))
	}
	raw, err := s.list.Run(ctx, s.rdb, keys, opts.Status, opts.Offset, limit).Slice()
	if err != nil {
		return ListPage{}, fmt.Errorf("listing instances: %w", mapScriptError(err))
	}
	if len(raw) < 2 {
		return ListPage{}, fmt.Errorf("listing instances: reply of length %d, want at least 2", len(raw))
	}
	n, err := replyInts(raw[:2], 2)
	if err != nil {
		return ListPage{}, fmt.Errorf("listing instances: %w", err)
	}
	s.worked("list", n[1])
	ids, err := replyStrings(raw[2:])
	if err != nil {
		return ListPage{}, fmt.Errorf("listing instances: %w", err)
	}
	return ListPage{InstanceIDs: ids, NextOffset: n[0]}, nil
}

// worked reports the work one management script call did to the test hook.
func (s *Store) worked(script string, n int) {
	if s.onWork != nil {
		s.onWork(script, n)
	}
}

// Instances reads several instances in one round trip, in the order of ids;
// ids without an instance are left out.
func (s *Store) Instances(ctx context.Context, ids []string) ([]InstanceRecord, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGetAll(ctx, s.keys.InstanceKey(id))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading instances: %w", err)
	}
	out := make([]InstanceRecord, 0, len(ids))
	for i, cmd := range cmds {
		h := cmd.Val()
		if len(h) == 0 {
			continue
		}
		r, err := decodeInstance(ids[i], h)
		if err != nil {
			return nil, fmt.Errorf("reading instance %s: %w", ids[i], err)
		}
		out = append(out, r)
	}
	return out, nil
}

// ExecutionRecord describes one stored execution of an instance.
type ExecutionRecord struct {
	ExecutionID uint64
	// Status is the OrchestrationAck.Status of the execution's last ack:
	// Running, Completed, Failed or ContinuedAsNew.
	Status string
	// Output is the ack's output once the execution has ended (for
	// ContinuedAsNew, the next execution's input); empty while Running.
	Output string
	// StartedAt is the time of the execution's first ack; EndedAt the time
	// of the ack that ended it (zero while Running).
	StartedAt, EndedAt time.Time
	// Events is the length of the execution's history.
	Events int
}

// execRecord is the JSON form of an execution record in execs:<id>.
type execRecord struct {
	Status string `json:"status"`
	Start  int64  `json:"start"`
	End    int64  `json:"end"`
	Events int    `json:"events"`
}

// Executions returns the stored executions of an instance, ascending by
// execution id (pruned ones are gone; a Pending instance has none). It
// returns ErrInstanceNotFound.
func (s *Store) Executions(ctx context.Context, instanceID string) ([]ExecutionRecord, error) {
	var exists *redis.IntCmd
	var recs *redis.MapStringStringCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		exists = p.Exists(ctx, s.keys.InstanceKey(instanceID))
		recs = p.HGetAll(ctx, s.keys.executionsKey(instanceID))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading executions of %s: %w", instanceID, err)
	}
	if exists.Val() == 0 {
		return nil, fmt.Errorf("reading executions of %s: %w", instanceID, ErrInstanceNotFound)
	}
	h := recs.Val()
	out := make([]ExecutionRecord, 0, len(h)/2+1)
	for field, v := range h {
		n, err := strconv.ParseUint(field, 10, 64)
		if err != nil {
			continue // "<n>:out"
		}
		var r execRecord
		if err := json.Unmarshal([]byte(v), &r); err != nil {
			return nil, fmt.Errorf("reading executions of %s: decoding execution %d: %w", instanceID, n, err)
		}
		rec := ExecutionRecord{ExecutionID: n, Status: r.Status, Output: h[field+":out"],
			StartedAt: time.UnixMilli(r.Start), Events: r.Events}
		if r.End > 0 {
			rec.EndedAt = time.UnixMilli(r.End)
		}
		out = append(out, rec)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ExecutionID < out[j].ExecutionID })
	return out, nil
}

// Children returns the ids of the sub-orchestrations an instance's acks
// created (ChildStart with ParentInstanceID), sorted. Detached instances
// are not its children. It returns ErrInstanceNotFound.
func (s *Store) Children(ctx context.Context, instanceID string) ([]string, error) {
	var exists *redis.IntCmd
	var kids *redis.StringSliceCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		exists = p.Exists(ctx, s.keys.InstanceKey(instanceID))
		kids = p.SMembers(ctx, s.keys.childrenKey(instanceID))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading children of %s: %w", instanceID, err)
	}
	if exists.Val() == 0 {
		return nil, fmt.Errorf("reading children of %s: %w", instanceID, ErrInstanceNotFound)
	}
	out := append([]string{}, kids.Val()...)
	sort.Strings(out)
	return out, nil
}

// DeleteResult counts what a delete removed.
type DeleteResult struct {
	// Instances deleted (the roots and their sub-orchestrations).
	Instances int
	// Executions are the deleted execution records.
	Executions int
	// Events are the deleted history events.
	Events int
	// QueueMessages are the deleted inbox messages and in-flight work items.
	QueueMessages int
}

func (r *DeleteResult) add(o DeleteResult) {
	r.Instances += o.Instances
	r.Executions += o.Executions
	r.Events += o.Events
	r.QueueMessages += o.QueueMessages
}

// DeleteInstance deletes an instance and its sub-orchestrations,
// recursively, in one script: instance hashes (and with them the locks),
// inboxes, histories, execution records, key-value state, children sets, the
// work items they scheduled with a reference (a worker running one gets
// ErrWorkNotFound and cancels it), ready-bucket entries and index entries;
// the stats counters are adjusted. A turn in flight for a deleted instance
// cannot commit: its ack fails with ErrInstanceNotFound. Timers are not
// indexed by instance; the deleted instances' timers are dropped when they
// fall due (messages to missing instances are dropped).
//
// It returns ErrInstanceNotFound; ErrCannotDeleteSubOrchestration when the
// instance's parent exists (an instance whose parent is gone can be
// deleted); ErrTreeTooLarge; and, unless force is set, ErrInstanceRunning
// naming the first Pending or Running instance of the tree. Nothing is
// deleted when an error is returned.
func (s *Store) DeleteInstance(ctx context.Context, instanceID string, force bool) (DeleteResult, error) {
	k := s.keys
	f := "0"
	if force {
		f = "1"
	}
	raw, err := s.deleteTree.Run(ctx, s.rdb, []string{k.Prefix(), k.InstanceKey(instanceID)},
		instanceID, f, s.lim.maxTree, s.lim.maxCost).Slice()
	if err != nil {
		return DeleteResult{}, fmt.Errorf("deleting instance %s: %w", instanceID, mapScriptErrorDetail(err))
	}
	n, err := replyInts(raw, 4)
	if err != nil {
		return DeleteResult{}, fmt.Errorf("deleting instance %s: decoding reply: %w", instanceID, err)
	}
	return DeleteResult{Instances: n[0], Executions: n[1], Events: n[2], QueueMessages: n[3]}, nil
}

// BulkDeleteFilter selects the instances DeleteInstances deletes.
type BulkDeleteFilter struct {
	// InstanceIDs, when not empty, are the candidates; otherwise every
	// instance is, oldest first.
	InstanceIDs []string
	// CompletedBefore, when not zero, keeps only instances that ended
	// before it.
	CompletedBefore time.Time
	// Limit is the largest number of root instances deleted (their
	// sub-orchestrations are not counted). If zero, DefaultBulkDeleteLimit.
	Limit int
}

// DeleteInstances deletes root instances (no parent, or a parent that no
// longer exists) that are Completed or Failed and match filter, each with
// its whole tree. Roots that are still running, sub-orchestrations, and
// roots with a sub-orchestration that is still running are skipped
// silently, and so is a tree that DeleteInstance would refuse as too large.
// Without ids the candidates are read from the per-status indices of ended
// instances, oldest first (by creation time), so running instances cost
// nothing. Each tree is deleted atomically; the whole call is not: it runs
// one script per slice of at most 100 units of work (a candidate looked at
// is 1, a deleted tree its records) and, with ids, at most 100 ids, and
// returns what the calls before an error deleted along with the error.
func (s *Store) DeleteInstances(ctx context.Context, filter BulkDeleteFilter) (DeleteResult, error) {
	if filter.Limit < 0 {
		return DeleteResult{}, fmt.Errorf("deleting instances: negative limit %d", filter.Limit)
	}
	remaining := filter.Limit
	if remaining == 0 {
		remaining = DefaultBulkDeleteLimit
	}
	var before int64
	if !filter.CompletedBefore.IsZero() {
		before = max(filter.CompletedBefore.UnixMilli(), 1)
	}
	k := s.keys
	keys := []string{k.Prefix(), k.statusIndexKey(StatusCompleted), k.statusIndexKey(StatusFailed)}
	var total DeleteResult
	// page runs one call: mode "ids" with ids, or "scan" after the entry
	// (score, member); it returns the roots deleted, next and the cursor.
	page := func(mode, score, member string, ids []string) (roots, next int, cs, cm string, err error) {
		args := make([]any, 0, 8+len(ids))
		args = append(args, mode, remaining, before, s.lim.maxTree, s.lim.maxCost, max(s.lim.bulkWork, 1), score, member)
		for _, id := range ids {
			args = append(args, id)
		}
		raw, err := s.deleteBulk.Run(ctx, s.rdb, keys, args...).Slice()
		if err != nil {
			return 0, 0, "", "", fmt.Errorf("deleting instances: %w", mapScriptErrorDetail(err))
		}
		if len(raw) != 9 {
			return 0, 0, "", "", fmt.Errorf("deleting instances: reply of length %d, want 9", len(raw))
		}
		n, err := replyInts(raw[:7], 7)
		if err != nil {
			return 0, 0, "", "", fmt.Errorf("deleting instances: decoding reply: %w", err)
		}
		cur, err := replyStrings(raw[7:])
		if err != nil {
			return 0, 0, "", "", fmt.Errorf("deleting instances: decoding reply: %w", err)
		}
		s.worked("delete_bulk", n[6])
		total.add(DeleteResult{Instances: n[1], Executions: n[2], Events: n[3], QueueMessages: n[4]})
		return n[0], n[5], cur[0], cur[1], nil
	}
	ids := filter.InstanceIDs
	scanning := len(ids) == 0
	var score, member string
	for remaining > 0 {
		if err := ctx.Err(); err != nil {
			return total, fmt.Errorf("deleting instances: %w", err)
		}
		if scanning {
			roots, next, cs, cm, err := page("scan", score, member, nil)
			if err != nil {
				return total, err
			}
			remaining -= roots
			if next < 0 {
				break
			}
			score, member = cs, cm
			continue
		}
		chunk := ids[:min(len(ids), max(s.lim.bulkIDs, 1))]
		roots, next, _, _, err := page("ids", "", "", chunk)
		if err != nil {
			return total, err
		}
		remaining -= roots
		if next < 0 {
			ids = ids[len(chunk):]
		} else {
			ids = ids[max(next-1, 1):] // next is the 1-based index of the first id left
		}
		if len(ids) == 0 {
			break
		}
	}
	return total, nil
}

// PruneOptions selects the executions PruneExecutions deletes.
type PruneOptions struct {
	// KeepLast is how many of the newest executions to keep; 0 and 1 both
	// keep only the current one, which is always kept.
	KeepLast int
	// CompletedBefore, when not zero, deletes only executions that ended
	// before it.
	CompletedBefore time.Time
}

// PruneResult counts what PruneExecutions deleted.
type PruneResult struct {
	// Instances is 1: the instance processed.
	Instances  int
	Executions int
	Events     int
}

// PruneExecutions deletes old executions of an instance: their histories
// and records. It never deletes the current execution nor one still
// Running, whatever the options; key-value state, which belongs to the
// instance, is untouched. Each script call is atomic, looks at most at 1,000
// execution ids and deletes at most 100 executions, oldest first; more take
// several calls, and the whole prune is not atomic (the first call also
// reads the execution ids stored: O(records), no record read). It returns
// ErrInstanceNotFound.
func (s *Store) PruneExecutions(ctx context.Context, instanceID string, opts PruneOptions) (PruneResult, error) {
	if opts.KeepLast < 0 {
		return PruneResult{}, fmt.Errorf("pruning executions of %s: negative KeepLast %d", instanceID, opts.KeepLast)
	}
	keep := max(opts.KeepLast, 1)
	var before int64
	if !opts.CompletedBefore.IsZero() {
		before = max(opts.CompletedBefore.UnixMilli(), 1)
	}
	k := s.keys
	res := PruneResult{Instances: 1}
	after, threshold := -1, 0
	for {
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("pruning executions of %s: %w", instanceID, err)
		}
		raw, err := s.prune.Run(ctx, s.rdb,
			[]string{k.Prefix(), k.InstanceKey(instanceID), k.executionsKey(instanceID)},
			instanceID, keep, before, max(s.lim.prune, 1), after, max(s.lim.pruneRead, 1), threshold).Slice()
		if err != nil {
			if res.Executions == 0 {
				res.Instances = 0
			}
			return res, fmt.Errorf("pruning executions of %s: %w", instanceID, mapScriptError(err))
		}
		n, err := replyInts(raw, 6)
		if err != nil {
			return res, fmt.Errorf("pruning executions of %s: decoding reply: %w", instanceID, err)
		}
		s.worked("prune", n[4]+n[0])
		res.Executions += n[0]
		res.Events += n[1]
		if n[2] == 0 {
			return res, nil
		}
		after, threshold = n[3], n[5]
	}
}

// SystemMetrics are the namespace-wide counters.
type SystemMetrics struct {
	// Pending, Running, Completed and Failed count instances by status.
	Pending, Running, Completed, Failed int64
	// Instances is the number of instances.
	Instances int64
	// Executions and Events are the stored execution records and history
	// events (deletes and prunes subtract theirs).
	Executions, Events int64
}

// Metrics reads the stats counters and the instance count in one
// transaction. The counters are kept by the scripts that change them, so
// reading them costs O(1) whatever the number of instances.
func (s *Store) Metrics(ctx context.Context) (SystemMetrics, error) {
	var stats *redis.MapStringStringCmd
	var card *redis.IntCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		stats = p.HGetAll(ctx, s.keys.StatsKey())
		card = p.ZCard(ctx, s.keys.instancesKey())
		return nil
	})
	if err != nil {
		return SystemMetrics{}, fmt.Errorf("reading metrics: %w", err)
	}
	h := stats.Val()
	get := func(f string) int64 {
		n, _ := strconv.ParseInt(h[f], 10, 64)
		return n
	}
	return SystemMetrics{
		Pending: get("pending"), Running: get("running"), Completed: get("completed"), Failed: get("failed"),
		Instances: card.Val(), Executions: get("executions"), Events: get("events"),
	}, nil
}

// BucketDepth is what waits in one bucket.
type BucketDepth struct {
	Bucket string
	// Ready entries can be fetched now (including expired locks).
	Ready int
	// Delayed entries wait for a later time without a lock: backoff of an
	// unregistered handler, an abandon with a delay.
	Delayed int
	// Locked entries are held by a worker whose lock has not expired.
	Locked int
	// Unserved is true when no live worker node advertises the bucket: its
	// work waits for a node that has the name, version or tag.
	Unserved bool
}

// QueueDepths is what waits in every non-empty bucket.
type QueueDepths struct {
	// Orchestrations are the ready buckets, sorted by name.
	Orchestrations []BucketDepth
	// Activities are the work buckets (tagged ones included), sorted by name.
	Activities []BucketDepth
	// Timers is the number of timers not yet due or not yet promoted that
	// will be delivered: timers of deleted or ended instances (dropped when
	// they fall due) are not counted.
	Timers int
	// Partial is true when more than 2,000 entries were due later, so that
	// some were counted as Delayed without checking for a lock, or more
	// than 2,000 timers were waiting, so that some were counted unchecked.
	Partial bool
}

// QueueDepths reports, for every known bucket that holds entries, how many
// are ready, delayed and locked, and whether a live node serves it: this is
// how an operator sees work (an activity tag, an orchestration version) that
// nobody serves. Buckets are those of the registries buckets:o and
// buckets:a; the cost is O(buckets + live nodes' buckets + entries due later,
// at most 2,000 inspected, + timers, at most 2,000 inspected).
func (s *Store) QueueDepths(ctx context.Context) (QueueDepths, error) {
	raw, err := s.depths.Run(ctx, s.rdb, []string{s.keys.Prefix()}, s.lim.depths, s.lim.depthsTimers).Slice()
	if err != nil {
		return QueueDepths{}, fmt.Errorf("reading queue depths: %w", mapScriptError(err))
	}
	if len(raw) != 4 {
		return QueueDepths{}, fmt.Errorf("reading queue depths: reply of length %d, want 4", len(raw))
	}
	var d QueueDepths
	timers, err := replyInt(raw[0])
	if err != nil {
		return QueueDepths{}, fmt.Errorf("reading queue depths: %w", err)
	}
	partial, err := replyInt(raw[1])
	if err != nil {
		return QueueDepths{}, fmt.Errorf("reading queue depths: %w", err)
	}
	d.Timers, d.Partial = int(timers), partial == 1
	for i, dst := range []*[]BucketDepth{&d.Orchestrations, &d.Activities} {
		list, ok := raw[2+i].([]any)
		if !ok {
			return QueueDepths{}, fmt.Errorf("reading queue depths: unexpected %T", raw[2+i])
		}
		for _, v := range list {
			f, err := replyArray(v, 5)
			if err != nil {
				return QueueDepths{}, fmt.Errorf("reading queue depths: %w", err)
			}
			name, err := replyString(f[0])
			if err != nil {
				return QueueDepths{}, fmt.Errorf("reading queue depths: %w", err)
			}
			n, err := replyInts(f[1:], 4)
			if err != nil {
				return QueueDepths{}, fmt.Errorf("reading queue depths: %w", err)
			}
			*dst = append(*dst, BucketDepth{Bucket: name, Ready: n[0], Delayed: n[1], Locked: n[2], Unserved: n[3] == 1})
		}
	}
	return d, nil
}

// replyInts decodes a reply of exactly n integers.
func replyInts(raw []any, n int) ([]int, error) {
	if len(raw) != n {
		return nil, fmt.Errorf("reply of length %d, want %d", len(raw), n)
	}
	out := make([]int, n)
	for i, v := range raw {
		x, err := replyInt(v)
		if err != nil {
			return nil, err
		}
		out[i] = int(x)
	}
	return out, nil
}
