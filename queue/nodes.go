package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// NodeDescription is what a worker node says about itself when it
// advertises, for operators (the dashboard's fleet page, `duroworker
// fleet`). It is stored as JSON next to the node's buckets and expires with
// its liveness; nothing in the runtime decides anything from it.
type NodeDescription struct {
	// Host and PID name the process.
	Host string `json:"host,omitempty"`
	PID  int    `json:"pid,omitempty"`
	// Started is when the worker started (Unix ms).
	Started int64 `json:"started,omitempty"`
	// Engine is the node's own replay-engine version; ReplayRange the
	// range of pinned engine versions it replays.
	Engine      string `json:"engine,omitempty"`
	ReplayRange string `json:"replay_range,omitempty"`
	// OrchestrationConcurrency and ActivityConcurrency are its slot counts
	// (0: it does not run that kind of work).
	OrchestrationConcurrency int `json:"orchestration_concurrency"`
	ActivityConcurrency      int `json:"activity_concurrency"`
	// Tags are the activity tags it serves, as configured.
	Tags string `json:"tags,omitempty"`
	// Sessions is how many sessions it owned at its last heartbeat.
	Sessions int `json:"sessions"`
}

// Node is one worker node as ListNodes reads it.
type Node struct {
	ID string
	// Live is false for a node whose liveness lapsed less than a minute ago
	// (it is kept that long so that its locks can be reclaimed).
	Live bool
	// LiveUntil is when its liveness lapses unless it advertises again;
	// LiveSince when its current live period began (zero if unknown).
	LiveUntil, LiveSince time.Time
	// Buckets are the ready buckets it advertises (see package capability),
	// sorted. Empty once the node lapsed.
	Buckets []string
	// Description is what the node said about itself (zero if it said
	// nothing, or lapsed).
	Description NodeDescription
	// TTL is the liveness each of its advertisements gives it (zero if
	// unknown): a live node advertises again well within it.
	TTL time.Duration
}

// AdvertiseNode records that worker node nodeID is live for ttl and serves
// buckets. Workers call it periodically; a node that stops calling is
// forgotten after ttl.
func (s *Store) AdvertiseNode(ctx context.Context, nodeID string, buckets []string, ttl time.Duration) error {
	return s.AdvertiseDescribedNode(ctx, nodeID, nil, buckets, ttl)
}

// AdvertiseDescribedNode is AdvertiseNode that also stores desc (nil: none)
// for ListNodes, in the same step.
func (s *Store) AdvertiseDescribedNode(ctx context.Context, nodeID string, desc *NodeDescription, buckets []string, ttl time.Duration) error {
	if nodeID == "" || ttl <= 0 {
		return errors.New("advertising node: node id and a positive ttl are required")
	}
	info := ""
	if desc != nil {
		b, err := json.Marshal(desc)
		if err != nil {
			return fmt.Errorf("advertising node %s: %w", nodeID, err)
		}
		info = string(b)
	}
	args := make([]any, 0, 3+len(buckets))
	args = append(args, nodeID, ttl.Milliseconds(), info)
	for _, b := range buckets {
		args = append(args, b)
	}
	if err := s.advertise.Run(ctx, s.rdb, []string{s.keys.Prefix()}, args...).Err(); err != nil {
		return fmt.Errorf("advertising node %s: %w", nodeID, mapScriptError(err))
	}
	return nil
}

// ListNodes returns the worker nodes of the namespace, live ones and those
// lapsed within the last minute, ordered by id. It reads without a script
// (one pipeline after the node list), so a node may change between the
// reads; it is for display, not for decisions.
func (s *Store) ListNodes(ctx context.Context) ([]Node, error) {
	now, err := s.rdb.Time(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("listing nodes: %w", err)
	}
	entries, err := s.rdb.ZRangeWithScores(ctx, s.keys.NodesKey(), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("listing nodes: %w", err)
	}
	if len(entries) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	reads := make([]nodeReads, len(entries))
	for i, e := range entries {
		id, _ := e.Member.(string)
		reads[i] = s.readNode(ctx, pipe, id)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("listing nodes: %w", err)
	}
	nodes := make([]Node, 0, len(entries))
	for i, e := range entries {
		id, _ := e.Member.(string)
		nodes = append(nodes, reads[i].node(id, int64(e.Score), now))
	}
	slices.SortFunc(nodes, func(a, b Node) int { return strings.Compare(a.ID, b.ID) })
	return nodes, nil
}

// GetNode returns worker node nodeID as ListNodes would, and false when it
// is not listed (never advertised, withdrawn, or lapsed over a minute ago).
func (s *Store) GetNode(ctx context.Context, nodeID string) (Node, bool, error) {
	pipe := s.rdb.Pipeline()
	now := pipe.Time(ctx)
	score := pipe.ZScore(ctx, s.keys.NodesKey(), nodeID)
	r := s.readNode(ctx, pipe, nodeID)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return Node{}, false, fmt.Errorf("reading node %s: %w", nodeID, err)
	}
	if errors.Is(score.Err(), redis.Nil) {
		return Node{}, false, nil
	}
	return r.node(nodeID, int64(score.Val()), now.Val()), true, nil
}

// nodeReads are the pipelined reads of one node's keys.
type nodeReads struct {
	members    *redis.StringSliceCmd
	info       *redis.StringCmd
	since, ttl *redis.StringCmd
}

func (s *Store) readNode(ctx context.Context, pipe redis.Pipeliner, id string) nodeReads {
	return nodeReads{
		members: pipe.SMembers(ctx, s.keys.nodeKey(id)),
		info:    pipe.Get(ctx, s.keys.nodeInfoKey(id)),
		since:   pipe.HGet(ctx, s.keys.nodeSinceKey(), id),
		ttl:     pipe.HGet(ctx, s.keys.nodeTTLKey(), id),
	}
}

// node builds the Node of id, scored (live until) score ms, at server time
// now.
func (r nodeReads) node(id string, score int64, now time.Time) Node {
	n := Node{ID: id, LiveUntil: time.UnixMilli(score), Live: score >= now.UnixMilli()}
	if ms, err := strconv.ParseInt(r.since.Val(), 10, 64); err == nil {
		n.LiveSince = time.UnixMilli(ms)
	}
	if ms, err := strconv.ParseInt(r.ttl.Val(), 10, 64); err == nil {
		n.TTL = time.Duration(ms) * time.Millisecond
	}
	if n.Live {
		n.Buckets = r.members.Val()
		slices.Sort(n.Buckets)
		if raw := r.info.Val(); raw != "" {
			// A description that does not parse (another version's
			// writer) is shown as none rather than failing the list.
			_ = json.Unmarshal([]byte(raw), &n.Description)
		}
	}
	return n
}

// WithdrawNode forgets nodeID at once (on graceful shutdown).
func (s *Store) WithdrawNode(ctx context.Context, nodeID string) error {
	if err := s.withdraw.Run(ctx, s.rdb, []string{s.keys.Prefix()}, nodeID).Err(); err != nil {
		return fmt.Errorf("withdrawing node %s: %w", nodeID, mapScriptError(err))
	}
	return nil
}

// ReclaimDeadNodes expires at once, at most limit of them, the locks held by
// worker nodes whose liveness lapsed while nodeID (the caller, a live node
// that advertised itself with AdvertiseNode) was live without a lapse: those
// nodes died, or at least stopped advertising, so their turns and
// activities are taken over by the next fetch instead of waiting out their
// lock timeouts. Only locks fetched with a NodeID are recorded and
// reclaimed. Fencing is kept: the dead node's late ack, renewal or abandon
// fails with ErrLockLost. A node that withdrew (WithdrawNode, graceful
// shutdown) keeps its locks. A node that lapsed before nodeID became live
// counts as dead only once nodeID has been live for that node's own
// liveness (the ttl of its AdvertiseNode): right after an outage of Redis
// that lapsed every node nothing is reclaimed (the nodes were alive and
// advertise again), while a replacement started after a node died takes
// its locks over that much later. Workers call it on each heartbeat, before
// UnservedBuckets (which forgets dead nodes). It returns the number of
// locks reclaimed.
func (s *Store) ReclaimDeadNodes(ctx context.Context, nodeID string, limit int) (int, error) {
	return s.reclaimLocks(ctx, "reclaiming dead nodes' locks", nodeID, limit, false)
}

// ReclaimEarlierLocks expires at once, at most limit of them, the locks
// still recorded for nodeID, which a process starting under nodeID holds
// none of: they are those of an earlier process with the same node id
// (killed, or restarted before its liveness lapsed, as a Kubernetes pod
// keeps its name), taken over by the next fetch like a dead node's (see
// ReclaimDeadNodes) instead of waiting out their lock timeouts. Entries
// that process read but never locked are freed too. Workers call it in
// Start, before they take any lock; a second process running under the
// same node id at the same time would lose its locks. It returns the
// number of locks reclaimed.
func (s *Store) ReclaimEarlierLocks(ctx context.Context, nodeID string, limit int) (int, error) {
	return s.reclaimLocks(ctx, "reclaiming an earlier process's locks", nodeID, limit, true)
}

func (s *Store) reclaimLocks(ctx context.Context, what, nodeID string, limit int, own bool) (int, error) {
	if nodeID == "" {
		return 0, fmt.Errorf("%s: the caller's node id is required", what)
	}
	if limit <= 0 {
		limit = 1000
	}
	flag := "0"
	if own {
		flag = "1"
	}
	n, err := s.reclaimNodes.Run(ctx, s.rdb, []string{s.keys.Prefix()}, nodeID, limit, flag).Int()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, mapScriptError(err))
	}
	return n, nil
}

// UnservedBuckets forgets the nodes whose liveness lapsed, and returns up to
// limit buckets that hold work no live node advertises: orchestration buckets ("o:", "v:", "x:") and activity buckets
// ("a:"). Workers fetch from them too, so that work nobody can run (an
// unregistered name or version) is backed off and finally poisoned instead
// of waiting forever.
func (s *Store) UnservedBuckets(ctx context.Context, limit int) ([]string, error) {
	if limit <= 0 {
		limit = 100
	}
	out, err := s.unserved.Run(ctx, s.rdb, []string{s.keys.Prefix()}, limit).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("listing unserved buckets: %w", mapScriptError(err))
	}
	return out, nil
}

// Publish sends payload on channel (one of the namespace's channels, see
// Keys). Workers use it to check, before they start, that their Redis user
// may publish wake-ups.
func (s *Store) Publish(ctx context.Context, channel, payload string) error {
	if err := s.rdb.Publish(ctx, channel, payload).Err(); err != nil {
		return fmt.Errorf("publishing on %s: %w", channel, err)
	}
	return nil
}
