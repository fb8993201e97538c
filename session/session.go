// Package session pins activities to the worker that owns their session.
//
// An activity scheduled on a session (engine.ActivityOptions.SessionID) is
// claimed, with its session, by the first worker that fetches it; the
// session's later activities are routed to that owner's node bucket while it
// holds the session. Ownership is a lease: the owner's Manager renews it
// while the session sees activity, unpins it after IdleTimeout without any,
// and lets it lapse when the owner dies, after which any worker may claim it
// (ReclaimSessions moves the work left for a dead owner back). A graceful
// shutdown releases every session at once.
package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/duroworker/duroworker/queue"
)

// Defaults for Options fields left zero.
const (
	DefaultLockTimeout = 30 * time.Second
	DefaultIdleTimeout = 5 * time.Minute
	DefaultMaxSessions = 10
)

// Options configures a Manager.
type Options struct {
	// Owner is the id sessions are held under: the worker's node id, so a
	// restarted node with the same id gets its sessions back. Required.
	Owner string
	// LockTimeout is the session lease; it is renewed every third of it.
	// If zero, 30 seconds.
	LockTimeout time.Duration
	// IdleTimeout unpins a session that saw no activity for this long. It
	// must exceed the activity lock timeout, so that a long activity (whose
	// lock renewals count as activity) never loses its session. If zero,
	// 5 minutes.
	IdleTimeout time.Duration
	// MaxSessions bounds the sessions the owner holds at once; at capacity
	// new sessions are left to other workers. If zero, 10; negative: the
	// worker takes no session work.
	MaxSessions int
	// Logger receives warnings. If nil, slog.Default().
	Logger *slog.Logger
}

// WithDefaults fills zero fields and validates o against the activity lock
// timeout of the worker.
func (o Options) WithDefaults(activityLockTimeout time.Duration) (Options, error) {
	if o.LockTimeout == 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.MaxSessions == 0 {
		o.MaxSessions = DefaultMaxSessions
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	var errs []error
	if o.Owner == "" {
		errs = append(errs, errors.New("session owner is empty"))
	}
	if o.LockTimeout < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("SessionLockTimeout must be at least 100ms, got %s", o.LockTimeout))
	}
	if o.IdleTimeout <= activityLockTimeout {
		errs = append(errs, fmt.Errorf("SessionIdleTimeout (%s) must exceed ActivityLockTimeout (%s): a long-running activity would lose its session", o.IdleTimeout, activityLockTimeout))
	}
	if len(errs) > 0 {
		return o, fmt.Errorf("session options: %w", errors.Join(errs...))
	}
	return o, nil
}

// Enabled reports whether the owner takes session work.
func (o Options) Enabled() bool { return o.MaxSessions > 0 }

// Manager keeps the sessions of one owner.
type Manager struct {
	store *queue.Store
	opts  Options
	held  atomic.Int64 // sessions renewed at the last heartbeat
}

// Held returns how many sessions the owner held at its last heartbeat.
func (m *Manager) Held() int64 { return m.held.Load() }

// NewManager returns a manager for opts (already passed through WithDefaults).
func NewManager(store *queue.Store, opts Options) *Manager {
	return &Manager{store: store, opts: opts}
}

// FetchFields fills the session fields of a work fetch, and adds the owner's
// node bucket to its buckets.
func (m *Manager) FetchFields(req *queue.FetchWorkRequest) {
	if !m.opts.Enabled() {
		return
	}
	req.SessionOwner = m.opts.Owner
	req.SessionLease = m.opts.LockTimeout
	req.MaxSessions = m.opts.MaxSessions
	req.Buckets = append(req.Buckets, queue.NodeWorkBucket(m.opts.Owner))
}

// NodeBucket is the owner's node bucket.
func (m *Manager) NodeBucket() string { return queue.NodeWorkBucket(m.opts.Owner) }

// Run renews the owner's sessions every third of the lease, unpinning idle
// ones, and moves the work of dead owners back, until ctx ends.
func (m *Manager) Run(ctx context.Context) {
	if !m.opts.Enabled() {
		return
	}
	tick := time.NewTicker(m.opts.LockTimeout / 3)
	defer tick.Stop()
	for {
		m.Heartbeat(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Heartbeat renews once and reclaims the work of dead owners once.
func (m *Manager) Heartbeat(ctx context.Context) {
	if renewed, unpinned, err := m.store.RenewSessions(ctx, m.opts.Owner, m.opts.LockTimeout, m.opts.IdleTimeout); err != nil {
		if ctx.Err() == nil {
			m.opts.Logger.Warn("renewing sessions failed", "err", err)
		}
	} else {
		m.held.Store(int64(renewed))
		if unpinned > 0 {
			m.opts.Logger.Debug("idle sessions unpinned", "count", unpinned)
		}
	}
	if moved, err := m.store.ReclaimSessions(ctx); err != nil {
		if ctx.Err() == nil {
			m.opts.Logger.Warn("reclaiming sessions of dead owners failed", "err", err)
		}
	} else if moved > 0 {
		m.opts.Logger.Info("moved work of sessions whose owner died back to the shared buckets", "items", moved)
	}
}

// Release gives up every session of the owner and moves its waiting work
// back to the shared buckets, so an upgraded node can take it at once.
func (m *Manager) Release(ctx context.Context) error {
	if !m.opts.Enabled() {
		return nil
	}
	_, err := m.store.ReleaseSessions(ctx, m.opts.Owner)
	return err
}
