package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

func msTime(s string) time.Time {
	n, _ := strconv.ParseInt(s, 10, 64)
	return time.UnixMilli(n)
}

// RenewSessions is the heartbeat of a session owner: it extends the lease of
// every session owner holds that saw activity within idle, and unpins the
// idle ones so any worker may claim them again. It returns how many were
// renewed and unpinned.
func (s *Store) RenewSessions(ctx context.Context, owner string, lease, idle time.Duration) (renewed, unpinned int, err error) {
	r, err := s.renewSessions.Run(ctx, s.rdb, []string{s.keys.Prefix()}, owner, millis(lease), millis(idle)).Int64Slice()
	if err != nil {
		return 0, 0, fmt.Errorf("renewing sessions of %s: %w", owner, mapScriptError(err))
	}
	return int(r[0]), int(r[1]), nil
}

// ReleaseSessions gives up every session owner holds and moves the work
// waiting in its node bucket back to the ordinary buckets, so other workers
// can take it at once (graceful shutdown). It returns the items moved.
func (s *Store) ReleaseSessions(ctx context.Context, owner string) (int, error) {
	n, err := s.moveSessions.Run(ctx, s.rdb, []string{s.keys.Prefix()}, "release", owner, 10_000).Int()
	if err != nil {
		return 0, fmt.Errorf("releasing sessions of %s: %w", owner, mapScriptError(err))
	}
	return n, nil
}

// ReclaimSessions moves the work of session owners that are no longer live
// nodes, and whose session leases have lapsed, back to the ordinary buckets,
// where any worker can claim the sessions again. Any worker may call it. It
// returns the items moved.
func (s *Store) ReclaimSessions(ctx context.Context) (int, error) {
	n, err := s.moveSessions.Run(ctx, s.rdb, []string{s.keys.Prefix()}, "reclaim", "", 1_000).Int()
	if err != nil {
		return 0, fmt.Errorf("reclaiming sessions: %w", mapScriptError(err))
	}
	return n, nil
}

// SessionInfo describes one pinned session.
type SessionInfo struct {
	SessionID    string
	Owner        string
	LeaseUntil   time.Time
	LastActivity time.Time
}

// Session returns the owner of a session; ok is false when it is not pinned.
func (s *Store) Session(ctx context.Context, sessionID string) (SessionInfo, bool, error) {
	h, err := s.rdb.HGetAll(ctx, s.keys.sessionKey(sessionID)).Result()
	if err != nil {
		return SessionInfo{}, false, fmt.Errorf("reading session %s: %w", sessionID, err)
	}
	if h["owner"] == "" {
		return SessionInfo{}, false, nil
	}
	return SessionInfo{SessionID: sessionID, Owner: h["owner"],
		LeaseUntil: msTime(h["ldl"]), LastActivity: msTime(h["last"])}, true, nil
}

// OwnedSessions lists the sessions owner holds: those whose owner is still
// owner (a session another worker took over after its lease lapsed is not
// listed, even before the next RenewSessions cleans the owner's set).
func (s *Store) OwnedSessions(ctx context.Context, owner string) ([]string, error) {
	ids, err := s.rdb.SMembers(ctx, s.keys.ownerSessionsKey(owner)).Result()
	if err != nil {
		return nil, fmt.Errorf("listing sessions of %s: %w", owner, err)
	}
	if len(ids) == 0 {
		return ids, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGet(ctx, s.keys.sessionKey(id), "owner")
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("listing sessions of %s: %w", owner, err)
	}
	held := ids[:0]
	for i, id := range ids {
		if cmds[i].Val() == owner {
			held = append(held, id)
		}
	}
	return held, nil
}
