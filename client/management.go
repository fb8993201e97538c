package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/duroworker/duroworker/capability"
	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/internal/replay"
	"github.com/duroworker/duroworker/queue"
)

// Errors of the management API. The store's sentinels are re-exported so
// callers need not import queue; test with errors.Is.
var (
	// ErrInstanceRunning: DeleteInstance without force found a Pending or
	// Running instance in the tree; the error names it.
	ErrInstanceRunning = queue.ErrInstanceRunning
	// ErrCannotDeleteSubOrchestration: DeleteInstance was given a
	// sub-orchestration whose parent exists; delete its root instead.
	ErrCannotDeleteSubOrchestration = queue.ErrCannotDeleteSubOrchestration
	// ErrTreeTooLarge: the instance tree has more than 10,000
	// instances, or deleting it touches more than 100,000
	// records (prune its executions first).
	ErrTreeTooLarge = queue.ErrTreeTooLarge
	// ErrExecutionNotFound: ReadHistory was asked for an execution that
	// never existed or was pruned.
	ErrExecutionNotFound = errors.New("execution not found")
)

// ListOptions selects a page of ListInstances.
type ListOptions struct {
	// Status keeps only instances in this state (StatePending,
	// StateRunning, StateCompleted or StateFailed); empty lists all.
	Status State
	// Offset is where the page starts: 0, or the previous page's NextOffset.
	Offset int
	// Limit is the largest page. If zero, 100; at most 1000.
	Limit int
}

// InstancePage is one page of ListInstances.
type InstancePage struct {
	Instances []InstanceInfo
	// NextOffset is the Offset of the next page, -1 when there is none.
	NextOffset int
}

// ExecutionInfo describes one stored execution of an instance.
type ExecutionInfo struct {
	ExecutionID int64
	// Status is StateRunning, StateCompleted, StateFailed or
	// StateContinuedAsNew.
	Status State
	// Output is the result (Completed), the encoded failure (Failed) or the
	// next execution's input (ContinuedAsNew); empty while Running.
	Output string
	// Failure is the decoded failure of a Failed execution.
	Failure *engine.ErrorDetails
	// StartedAt is when the execution's first turn was committed; EndedAt
	// when it ended (zero while Running).
	StartedAt, EndedAt time.Time
	// EventCount is the length of the execution's history.
	EventCount int
}

// InstanceTree is an instance and its sub-orchestrations, recursively.
type InstanceTree struct {
	RootID string
	// AllIDs lists the tree breadth-first, RootID first.
	AllIDs []string
}

// DeleteResult counts what DeleteInstance or DeleteInstances removed.
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

// DefaultBulkDeleteLimit is how many root instances DeleteInstances deletes
// at most when BulkDeleteFilter.Limit is zero.
const DefaultBulkDeleteLimit = 1000

// BulkDeleteFilter selects what DeleteInstances deletes.
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
	// Instances is 1 when the instance was processed.
	Instances int
	// Executions are the deleted execution records.
	Executions int
	// Events are the deleted history events.
	Events int
}

// SystemMetrics are namespace-wide counters.
type SystemMetrics struct {
	// Pending, Running, Completed and Failed count instances by state.
	Pending, Running, Completed, Failed int64
	// Instances is the number of instances.
	Instances int64
	// Executions and Events are the stored execution records and history
	// events (deletes and prunes subtract theirs).
	Executions, Events int64
}

// QueueDepths is what waits in every non-empty bucket.
type QueueDepths struct {
	// Orchestrations are the ready buckets, sorted by name.
	Orchestrations []BucketDepth
	// Activities are the work buckets (tagged ones included), sorted by name.
	Activities []BucketDepth
	// Timers is the number of timers that will be delivered and are not
	// yet due or not yet promoted (timers of deleted or ended instances are
	// not counted).
	Timers int
	// Partial is true when there were too many entries due later or too
	// many timers (more than 2,000) to check each: some were counted
	// without checking, so the counts are estimates.
	Partial bool
}

// BucketDepth is what waits in one bucket.
type BucketDepth struct {
	// Bucket names the bucket: an orchestration name and version, or an
	// activity name and tag.
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

func bucketDepths(bs []queue.BucketDepth) []BucketDepth {
	if bs == nil {
		return nil
	}
	out := make([]BucketDepth, len(bs))
	for i, b := range bs {
		out[i] = BucketDepth{Bucket: b.Bucket, Ready: b.Ready, Delayed: b.Delayed, Locked: b.Locked, Unserved: b.Unserved}
	}
	return out
}

func deleteResult(r queue.DeleteResult) DeleteResult {
	return DeleteResult{Instances: r.Instances, Executions: r.Executions, Events: r.Events, QueueMessages: r.QueueMessages}
}

// ListInstances returns a page of instances, oldest first (by creation).
// With a Status filter the page is read from a per-status index: it is
// short only when it is the last one (NextOffset -1). Offsets are positions
// in the live creation-time index: deletes between
// pages may make a page skip instances.
func (c *Client) ListInstances(ctx context.Context, opts ListOptions) (InstancePage, error) {
	switch opts.Status {
	case "", StatePending, StateRunning, StateCompleted, StateFailed:
	default:
		return InstancePage{}, fmt.Errorf("%w: cannot list by status %q", ErrInvalidInput, opts.Status)
	}
	if opts.Offset < 0 || opts.Limit < 0 {
		return InstancePage{}, fmt.Errorf("%w: negative offset %d or limit %d", ErrInvalidInput, opts.Offset, opts.Limit)
	}
	p, err := c.store.ListInstances(ctx, queue.ListOptions{Status: string(opts.Status), Offset: opts.Offset, Limit: opts.Limit})
	if err != nil {
		return InstancePage{}, fmt.Errorf("listing instances: %w", err)
	}
	ids, next := p.InstanceIDs, p.NextOffset
	recs, err := c.store.Instances(ctx, ids)
	if err != nil {
		return InstancePage{}, fmt.Errorf("listing instances: %w", err)
	}
	page := InstancePage{Instances: make([]InstanceInfo, 0, len(recs)), NextOffset: next}
	for _, rec := range recs {
		page.Instances = append(page.Instances, infoFromRecord(rec))
	}
	return page, nil
}

// infoFromRecord converts a store record the way GetInstanceInfo does.
func infoFromRecord(rec queue.InstanceRecord) InstanceInfo {
	info := InstanceInfo{
		InstanceID:           rec.InstanceID,
		OrchestrationName:    rec.Name,
		OrchestrationVersion: rec.Version,
		CurrentExecutionID:   int64(rec.ExecutionID),
		Status:               State(rec.Status),
		CreatedAt:            rec.CreatedAt,
		UpdatedAt:            rec.UpdatedAt,
		ParentInstanceID:     rec.ParentInstanceID,
		EnginePin:            rec.EnginePin,
		CustomStatus:         rec.CustomStatus,
		CustomStatusSet:      rec.CustomStatusSet,
		CustomStatusVersion:  rec.CustomStatusVersion,
	}
	switch info.Status {
	case StateCompleted:
		info.Output = rec.Output
	case StateFailed:
		info.Failure = decodeFailure(rec.Output)
	}
	return info
}

// ListExecutions returns the stored executions of an instance, oldest
// first; pruned executions are gone and a Pending instance has none. It
// returns ErrInstanceNotFound.
func (c *Client) ListExecutions(ctx context.Context, instanceID string) ([]ExecutionInfo, error) {
	recs, err := c.store.Executions(ctx, instanceID)
	if err != nil {
		return nil, fmt.Errorf("listing executions of %s: %w", instanceID, err)
	}
	out := make([]ExecutionInfo, len(recs))
	for i, r := range recs {
		out[i] = ExecutionInfo{ExecutionID: int64(r.ExecutionID), Status: State(r.Status), Output: r.Output,
			StartedAt: r.StartedAt, EndedAt: r.EndedAt, EventCount: r.Events}
		if out[i].Status == StateFailed {
			out[i].Failure = decodeFailure(r.Output)
		}
	}
	return out, nil
}

// ReadHistory returns the history of one execution of an instance, decoded;
// execution 0 means the current one (empty while the instance is Pending).
// It returns ErrInstanceNotFound, and ErrExecutionNotFound for an
// execution that never existed or was pruned.
func (c *Client) ReadHistory(ctx context.Context, instanceID string, execution int64) ([]HistoryEvent, error) {
	if execution < 0 {
		return nil, fmt.Errorf("%w: execution %d", ErrInvalidInput, execution)
	}
	rec, err := c.store.Instance(ctx, instanceID)
	if err != nil {
		return nil, fmt.Errorf("reading history of %s: %w", instanceID, err)
	}
	if execution == 0 {
		if rec.ExecutionID == 0 {
			return []HistoryEvent{}, nil
		}
		execution = int64(rec.ExecutionID)
	}
	if uint64(execution) > rec.ExecutionID {
		return nil, fmt.Errorf("reading history of %s execution %d: %w (current is %d)", instanceID, execution, ErrExecutionNotFound, rec.ExecutionID)
	}
	raw, err := c.store.History(ctx, instanceID, uint64(execution))
	if err != nil {
		return nil, fmt.Errorf("reading history of %s execution %d: %w", instanceID, execution, err)
	}
	if len(raw) == 0 && uint64(execution) != rec.ExecutionID {
		// Empty: an execution without events, or a pruned one.
		execs, err := c.store.Executions(ctx, instanceID)
		if err != nil {
			return nil, fmt.Errorf("reading history of %s execution %d: %w", instanceID, execution, err)
		}
		found := false
		for _, x := range execs {
			found = found || x.ExecutionID == uint64(execution)
		}
		if !found {
			return nil, fmt.Errorf("reading history of %s execution %d: %w", instanceID, execution, ErrExecutionNotFound)
		}
	}
	events, err := replay.DecodeHistory(raw)
	if err != nil {
		return nil, fmt.Errorf("reading history of %s execution %d: %w", instanceID, execution, err)
	}
	out := make([]HistoryEvent, len(events))
	for i, e := range events {
		out[i] = historyEvent(e)
	}
	return out, nil
}

// GetInstanceTree returns an instance and its sub-orchestrations,
// recursively, breadth-first (detached orchestrations are not part of it).
// It reads one children set per instance, so it is not a snapshot: a tree
// that changes meanwhile may be seen half-changed. It returns
// ErrInstanceNotFound for a missing root and ErrTreeTooLarge past
// 10,000 instances.
func (c *Client) GetInstanceTree(ctx context.Context, instanceID string) (InstanceTree, error) {
	tree := InstanceTree{RootID: instanceID, AllIDs: []string{instanceID}}
	seen := map[string]bool{instanceID: true}
	for i := 0; i < len(tree.AllIDs); i++ {
		kids, err := c.store.Children(ctx, tree.AllIDs[i])
		if errors.Is(err, queue.ErrInstanceNotFound) && i > 0 {
			continue // deleted meanwhile
		}
		if err != nil {
			return InstanceTree{}, fmt.Errorf("reading the tree of %s: %w", instanceID, err)
		}
		for _, k := range kids {
			if seen[k] {
				continue
			}
			if len(tree.AllIDs) >= queue.MaxTreeSize {
				return InstanceTree{}, fmt.Errorf("reading the tree of %s: %w: more than %d instances", instanceID, ErrTreeTooLarge, queue.MaxTreeSize)
			}
			seen[k] = true
			tree.AllIDs = append(tree.AllIDs, k)
		}
	}
	return tree, nil
}

// DeleteInstance deletes an instance with all its sub-orchestrations, in
// one atomic step: their state, histories, key-value state, queued messages
// and in-flight activities (whose workers see their locks vanish and cancel
// them). A turn in flight for a deleted instance cannot commit. Only a root
// can be deleted (ErrCannotDeleteSubOrchestration); without force, a tree
// with a Pending or Running instance is refused (ErrInstanceRunning). It
// returns ErrInstanceNotFound and ErrTreeTooLarge; nothing is deleted on
// error. The id can be used again afterwards.
func (c *Client) DeleteInstance(ctx context.Context, instanceID string, force bool) (DeleteResult, error) {
	if err := validateInstanceID(instanceID); err != nil {
		return DeleteResult{}, err
	}
	res, err := c.store.DeleteInstance(ctx, instanceID, force)
	if err != nil {
		return DeleteResult{}, fmt.Errorf("deleting %s: %w", instanceID, err)
	}
	return deleteResult(res), nil
}

// DeleteInstances deletes ended (Completed or Failed) root instances that
// match filter, each with its sub-orchestrations; running roots,
// sub-orchestrations and roots with a sub-orchestration still running are
// skipped silently. Each tree is deleted atomically, the whole call is not:
// on error, the result counts what was deleted before it.
func (c *Client) DeleteInstances(ctx context.Context, filter BulkDeleteFilter) (DeleteResult, error) {
	for _, id := range filter.InstanceIDs {
		if err := validateInstanceID(id); err != nil {
			return DeleteResult{}, err
		}
	}
	if filter.Limit < 0 {
		return DeleteResult{}, fmt.Errorf("%w: negative limit %d", ErrInvalidInput, filter.Limit)
	}
	res, err := c.store.DeleteInstances(ctx, queue.BulkDeleteFilter{
		InstanceIDs: filter.InstanceIDs, CompletedBefore: filter.CompletedBefore, Limit: filter.Limit})
	if err != nil {
		return deleteResult(res), fmt.Errorf("deleting instances: %w", err)
	}
	return deleteResult(res), nil
}

// PruneExecutions deletes the histories of old executions of an instance
// (those continue-as-new left behind), keeping the newest opts.KeepLast
// (at least the current one) and, with opts.CompletedBefore, those that
// ended later. The current execution and running executions are never
// deleted; the instance's key-value state is untouched. An eternal
// orchestration can call it on itself from an activity. It returns
// ErrInstanceNotFound.
func (c *Client) PruneExecutions(ctx context.Context, instanceID string, opts PruneOptions) (PruneResult, error) {
	if opts.KeepLast < 0 {
		return PruneResult{}, fmt.Errorf("%w: negative KeepLast %d", ErrInvalidInput, opts.KeepLast)
	}
	r, err := c.store.PruneExecutions(ctx, instanceID, queue.PruneOptions{KeepLast: opts.KeepLast, CompletedBefore: opts.CompletedBefore})
	res := PruneResult{Instances: r.Instances, Executions: r.Executions, Events: r.Events}
	if err != nil {
		return res, fmt.Errorf("pruning executions of %s: %w", instanceID, err)
	}
	return res, nil
}

// GetSystemMetrics returns instance counts by status and the stored
// executions and history events, read from counters in O(1).
func (c *Client) GetSystemMetrics(ctx context.Context) (SystemMetrics, error) {
	m, err := c.store.Metrics(ctx)
	if err != nil {
		return SystemMetrics{}, fmt.Errorf("reading system metrics: %w", err)
	}
	return SystemMetrics{Pending: m.Pending, Running: m.Running, Completed: m.Completed, Failed: m.Failed,
		Instances: m.Instances, Executions: m.Executions, Events: m.Events}, nil
}

// GetQueueDepths returns, for every bucket that holds work, how many
// entries are ready, delayed (backoff) and locked, and whether any live
// worker serves it; Unserved buckets hold work (an activity tag, an
// orchestration name or version) that no running worker can take.
func (c *Client) GetQueueDepths(ctx context.Context) (QueueDepths, error) {
	d, err := c.store.QueueDepths(ctx)
	if err != nil {
		return QueueDepths{}, fmt.Errorf("reading queue depths: %w", err)
	}
	return QueueDepths{Orchestrations: bucketDepths(d.Orchestrations), Activities: bucketDepths(d.Activities),
		Timers: d.Timers, Partial: d.Partial}, nil
}

// Node is a worker node of the namespace, as it advertises itself.
type Node struct {
	// ID is the worker's node id (worker.Options.NodeID).
	ID string
	// Live is false for a node whose liveness lapsed within the last minute
	// (it stopped advertising: it died, or Redis was out of its reach).
	Live bool
	// LiveUntil is when its liveness lapses unless it advertises again;
	// LiveSince is when its current live period began (zero if unknown).
	LiveUntil, LiveSince time.Time
	// Buckets are the ready buckets it serves (capability.ParseBucket reads
	// them: orchestration names and versions, activity names and tags).
	Buckets []string
	// Host, PID and Started (zero if unknown) name the process.
	Host    string
	PID     int
	Started time.Time
	// Engine is its replay-engine version and ReplayRange the pinned engine
	// versions it replays ("" when it runs no orchestrations).
	Engine, ReplayRange string
	// OrchestrationConcurrency and ActivityConcurrency are its slots (0: it
	// does not run that kind of work); Tags its activity tag filter.
	OrchestrationConcurrency, ActivityConcurrency int
	Tags                                          string
	// Sessions is how many sessions it owned at its last heartbeat.
	Sessions int
}

// ListNodes returns the worker nodes that advertise themselves in the
// namespace (live ones, and those lapsed within the last minute), ordered by
// id. Workers advertise every few seconds (worker.Options.NodeHeartbeat).
func (c *Client) ListNodes(ctx context.Context) ([]Node, error) {
	ns, err := c.store.ListNodes(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing worker nodes: %w", err)
	}
	out := make([]Node, len(ns))
	for i, n := range ns {
		d := n.Description
		out[i] = Node{ID: n.ID, Live: n.Live, LiveUntil: n.LiveUntil, LiveSince: n.LiveSince, Buckets: n.Buckets,
			Host: d.Host, PID: d.PID, Engine: d.Engine, ReplayRange: d.ReplayRange,
			OrchestrationConcurrency: d.OrchestrationConcurrency, ActivityConcurrency: d.ActivityConcurrency,
			Tags: d.Tags, Sessions: d.Sessions}
		if d.Started > 0 {
			out[i].Started = time.UnixMilli(d.Started)
		}
	}
	return out, nil
}

// ServedBy returns the ids of the live worker nodes that take new
// executions of orchestration name: at version, or, with version "", at the
// version their registry's policy picks. None means a Start of it waits
// (Pending) until such a worker advertises itself, and is finally poisoned
// if none does. A version that does not parse is an error.
func (c *Client) ServedBy(ctx context.Context, name, version string) ([]string, error) {
	bucket := capability.StartBucket(name)
	if version != "" {
		v, err := semver.StrictNewVersion(version)
		if err != nil {
			return nil, fmt.Errorf("version %q: %w", version, err)
		}
		bucket = capability.StartVersionBucket(name, v.String())
	}
	nodes, err := c.ListNodes(ctx)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, n := range nodes {
		if n.Live && slices.Contains(n.Buckets, bucket) {
			ids = append(ids, n.ID)
		}
	}
	return ids, nil
}
