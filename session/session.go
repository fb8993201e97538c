// Package session pins activities to the worker that owns their session.
//
// An activity scheduled on a session (engine.ActivityOptions.SessionID) is
// claimed, with its session, by the first worker that fetches it; the
// session's later activities are routed to that owner's node bucket while it
// holds the session. Ownership is a lease: the owner's Manager renews it
// while the session sees activity, unpins it after IdleTimeout without any,
// and lets it lapse when the owner dies, after which any worker may claim it
// (the Manager of every worker moves the work left for a dead owner back). A
// graceful shutdown releases every session at once.
//
// Options are the session settings of a worker (worker.Options.Sessions);
// this package is their only home, with their defaults and their checks.
package session

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
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

// minLockTimeout is the shortest session lease Options accept.
const minLockTimeout = 100 * time.Millisecond

// Options are the session settings of a worker. The zero value of every
// field selects the documented default. Sessions are owned under the
// worker's NodeID: a restarted node with the same NodeID gets its sessions
// back.
type Options struct {
	// LockTimeout is the lease of a session the worker owns; it is renewed
	// every third of it. If zero, 30 seconds; at least 100ms.
	LockTimeout time.Duration
	// IdleTimeout unpins a session that saw no activity for this long. It
	// must exceed the worker's ActivityLockTimeout, so that a long activity
	// (whose lock renewals count as activity) never loses its session. If
	// zero, 5 minutes.
	IdleTimeout time.Duration
	// MaxSessions bounds the sessions the worker holds at once; at capacity
	// new sessions are left to other workers. If zero, 10; negative: the
	// worker takes no session activities.
	MaxSessions int
}

// WithDefaults returns o with its zero fields set to their defaults.
func (o Options) WithDefaults() Options {
	if o.LockTimeout == 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.MaxSessions == 0 {
		o.MaxSessions = DefaultMaxSessions
	}
	return o
}

// Validate checks o, with defaults applied, against the activity lock
// timeout of the worker, field by field in the order they are declared
// (LockTimeout, then IdleTimeout), and returns the first problem: the same
// options always give the same error. Field names in the message are those
// of worker.Options ("Sessions.LockTimeout").
func (o Options) Validate(activityLockTimeout time.Duration) error {
	o = o.WithDefaults()
	switch {
	case o.LockTimeout < 0:
		return fmt.Errorf("Sessions.LockTimeout must not be negative, got %s", o.LockTimeout)
	case o.LockTimeout < minLockTimeout:
		return fmt.Errorf("Sessions.LockTimeout must be at least %s, got %s", minLockTimeout, o.LockTimeout)
	case o.IdleTimeout <= activityLockTimeout:
		return fmt.Errorf("Sessions.IdleTimeout (%s) must exceed ActivityLockTimeout (%s): a long-running activity would lose its session",
			o.IdleTimeout, activityLockTimeout)
	}
	return nil
}

// Enabled reports whether a worker with these options takes session work.
func (o Options) Enabled() bool { return o.WithDefaults().MaxSessions > 0 }

// Manager keeps the sessions of one owner: it renews their leases, unpins
// idle ones, moves the work of dead owners back, and releases them all at
// shutdown. Create it with NewManager; Start and Stop it once each.
type Manager struct {
	store *queue.Store
	owner string
	opts  Options
	log   *slog.Logger
	held  atomic.Int64 // sessions renewed at the last heartbeat

	mu   sync.Mutex
	stop context.CancelFunc
	done chan struct{}
}

// NewManager returns the manager of owner's sessions (owner is the worker's
// node id) with opts, defaults applied; log receives its warnings (if nil,
// slog.Default()). Check opts with Validate first.
func NewManager(store *queue.Store, owner string, opts Options, log *slog.Logger) *Manager {
	if log == nil {
		log = slog.Default()
	}
	return &Manager{store: store, owner: owner, opts: opts.WithDefaults(), log: log}
}

// Held returns how many sessions the owner held at its last heartbeat.
func (m *Manager) Held() int64 { return m.held.Load() }

// FetchFields fills the session fields of a work fetch, and adds the owner's
// node bucket to its buckets.
func (m *Manager) FetchFields(req *queue.FetchWorkRequest) {
	if !m.opts.Enabled() {
		return
	}
	req.SessionOwner = m.owner
	req.SessionLease = m.opts.LockTimeout
	req.MaxSessions = m.opts.MaxSessions
	req.Buckets = append(req.Buckets, m.NodeBucket())
}

// NodeBucket is the owner's node bucket.
func (m *Manager) NodeBucket() string { return queue.NodeWorkBucket(m.owner) }

// Start renews the owner's sessions every third of the lease, unpinning idle
// ones, and moves the work of dead owners back, in a goroutine, until ctx
// ends or Stop is called. It does nothing when sessions are disabled.
func (m *Manager) Start(ctx context.Context) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.done != nil {
		return
	}
	ctx, m.stop = context.WithCancel(ctx)
	m.done = make(chan struct{})
	go func() {
		defer close(m.done)
		m.run(ctx)
	}()
}

// Stop ends the renewals started by Start and waits for them to return.
// The sessions stay pinned until Release or until their leases lapse.
func (m *Manager) Stop() {
	m.mu.Lock()
	stop, done := m.stop, m.done
	m.mu.Unlock()
	if done == nil {
		return
	}
	stop()
	<-done
}

// run is the loop of Start.
func (m *Manager) run(ctx context.Context) {
	if !m.opts.Enabled() {
		return
	}
	tick := time.NewTicker(m.opts.LockTimeout / 3)
	defer tick.Stop()
	for {
		m.heartbeat(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// heartbeat renews once and reclaims the work of dead owners once.
func (m *Manager) heartbeat(ctx context.Context) {
	if renewed, unpinned, err := m.store.RenewSessions(ctx, m.owner, m.opts.LockTimeout, m.opts.IdleTimeout); err != nil {
		if ctx.Err() == nil {
			m.log.Warn("renewing sessions failed", "err", err)
		}
	} else {
		m.held.Store(int64(renewed))
		if unpinned > 0 {
			m.log.Debug("idle sessions unpinned", "count", unpinned)
		}
	}
	if moved, err := m.store.ReclaimSessions(ctx); err != nil {
		if ctx.Err() == nil {
			m.log.Warn("reclaiming sessions of dead owners failed", "err", err)
		}
	} else if moved > 0 {
		m.log.Info("moved work of sessions whose owner died back to the shared buckets", "items", moved)
	}
}

// Release gives up every session of the owner and moves its waiting work
// back to the shared buckets, so an upgraded node can take it at once.
func (m *Manager) Release(ctx context.Context) error {
	if !m.opts.Enabled() {
		return nil
	}
	_, err := m.store.ReleaseSessions(ctx, m.owner)
	return err
}
