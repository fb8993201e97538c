package queue

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// AdvertiseNode records that worker node nodeID is live for ttl and serves
// buckets. Workers call it periodically; a node that stops calling is
// forgotten after ttl.
func (s *Store) AdvertiseNode(ctx context.Context, nodeID string, buckets []string, ttl time.Duration) error {
	if nodeID == "" || ttl <= 0 {
		return errors.New("advertising node: node id and a positive ttl are required")
	}
	args := make([]any, 0, 2+len(buckets))
	args = append(args, nodeID, ttl.Milliseconds())
	for _, b := range buckets {
		args = append(args, b)
	}
	if err := s.advertise.Run(ctx, s.rdb, []string{s.keys.Prefix()}, args...).Err(); err != nil {
		return fmt.Errorf("advertising node %s: %w", nodeID, mapScriptError(err))
	}
	return nil
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
// shutdown) keeps its locks, and after an outage of Redis that lapsed every
// node nothing is reclaimed (locks then expire at their deadlines). Workers
// call it on each heartbeat, before UnservedBuckets (which forgets dead
// nodes). It returns the number of locks reclaimed.
func (s *Store) ReclaimDeadNodes(ctx context.Context, nodeID string, limit int) (int, error) {
	if nodeID == "" {
		return 0, errors.New("reclaiming dead nodes' locks: the caller's node id is required")
	}
	if limit <= 0 {
		limit = 1000
	}
	n, err := s.reclaimNodes.Run(ctx, s.rdb, []string{s.keys.Prefix()}, nodeID, limit).Int()
	if err != nil {
		return 0, fmt.Errorf("reclaiming dead nodes' locks: %w", mapScriptError(err))
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
