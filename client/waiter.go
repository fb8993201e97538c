package client

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/queue"
)

// errClosed is returned by Ready after Close.
var errClosed = errors.New("client: closed")

// recheckInterval is a safety net: every waiter re-reads its status this
// often even without a notification.
const recheckInterval = 30 * time.Second

// deniedPollInterval is how often waiters re-read their status, and the
// subscription is tried again, while Redis denies the subscription (an ACL
// without permission on the channel).
const deniedPollInterval = time.Second

// waiter shares one subscription to the store's "ended" channel among all
// Wait and WaitMany calls of a client. A notification wakes the watchers of
// that instance; a (re)subscription, an error of the subscription or the
// periodic recheck wakes every watcher with "all": anything may have been
// missed, so they read every status they wait for again.
type waiter struct {
	store *queue.Store
	// log returns the logger of subscription problems (slog.Default).
	log func() *slog.Logger
	// recheck is how often every watcher reads its statuses again even
	// without a notification (recheckInterval).
	recheck time.Duration

	mu      sync.Mutex
	started bool
	closed  bool
	cancel  context.CancelFunc
	done    chan struct{}
	watches map[string]map[*watcher]struct{}
	// live is true while Redis has confirmed the subscription and the
	// connection has not failed since; liveCh is closed when it becomes
	// true.
	live   bool
	liveCh chan struct{}
}

// watcher is one Wait or WaitMany call's interest in a set of instances.
type watcher struct {
	// ch receives a value (it holds at most one) when ids or all changed.
	ch chan struct{}
	// ids are the instances notified since the last take; all is set when
	// any of the watched instances may have ended unnoticed. Both are
	// guarded by waiter.mu.
	ids map[string]struct{}
	all bool
}

func newWaiter(store *queue.Store) *waiter {
	return &waiter{store: store, log: slog.Default, recheck: recheckInterval,
		watches: map[string]map[*watcher]struct{}{}, liveCh: make(chan struct{})}
}

// start starts the subscription unless it runs; w.mu is held.
func (w *waiter) start() {
	if w.started {
		return
	}
	w.started = true
	bg, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	w.done = make(chan struct{})
	go w.run(bg)
}

// watch registers interest in instanceID. The returned channel receives a
// value whenever the instance may have ended; cancel unregisters.
func (w *waiter) watch(instanceID string) (<-chan struct{}, func()) {
	wt := w.watchMany([]string{instanceID})
	return wt.ch, func() { w.unwatch(wt, []string{instanceID}) }
}

// watchMany registers one watcher for every id of ids (without duplicates).
func (w *waiter) watchMany(ids []string) *watcher {
	wt := &watcher{ch: make(chan struct{}, 1), ids: map[string]struct{}{}}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.start()
	for _, id := range ids {
		set := w.watches[id]
		if set == nil {
			set = map[*watcher]struct{}{}
			w.watches[id] = set
		}
		set[wt] = struct{}{}
	}
	return wt
}

// unwatch removes wt's interest in ids.
func (w *waiter) unwatch(wt *watcher, ids []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, id := range ids {
		delete(w.watches[id], wt)
		if len(w.watches[id]) == 0 {
			delete(w.watches, id)
		}
	}
}

// take returns, and forgets, what happened to wt's instances since the
// last take: the ids notified, or all when any may have ended unnoticed.
func (w *waiter) take(wt *watcher) (ids []string, all bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for id := range wt.ids {
		ids = append(ids, id)
	}
	clear(wt.ids)
	all, wt.all = wt.all, false
	return ids, all
}

// ready blocks until the subscription is confirmed by Redis, starting it
// if needed.
func (w *waiter) ready(ctx context.Context) error {
	for {
		w.mu.Lock()
		if w.closed {
			w.mu.Unlock()
			return errClosed
		}
		w.start()
		live, ch := w.live, w.liveCh
		w.mu.Unlock()
		if live {
			return nil
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-ch:
		}
	}
}

// setLive records whether the subscription is confirmed.
func (w *waiter) setLive(live bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if live == w.live {
		return
	}
	w.live = live
	if live {
		close(w.liveCh)
	} else {
		w.liveCh = make(chan struct{})
	}
}

func (w *waiter) run(ctx context.Context) {
	defer close(w.done)
	ps := w.store.Subscribe(ctx, w.store.Keys().EndedChannel())
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() }) // unblocks Receive
	defer stop()
	defer ps.Close()
	defer w.setLive(false)
	tick := time.NewTicker(w.recheck)
	defer tick.Stop()
	msgs := make(chan any)
	channel := w.store.Keys().EndedChannel()
	go func() {
		defer close(msgs)
		denied := false
		for {
			var m any
			var err error
			if denied {
				// go-redis does not subscribe again after a denial: ask again
				// from time to time (each answer also makes waiters recheck)
				select {
				case <-ctx.Done():
					return
				case <-time.After(deniedPollInterval):
				}
				_ = ps.Subscribe(ctx, channel) // its answer comes through Receive
				m, err = ps.ReceiveTimeout(ctx, deniedPollInterval)
			} else {
				m, err = ps.Receive(ctx)
			}
			if ctx.Err() != nil {
				return
			}
			switch {
			case err != nil && isPermissionError(err):
				if !denied {
					w.log().Warn("client: Redis denied the subscription to "+channel+
						"; Wait falls back to re-reading each waited instance every "+deniedPollInterval.String()+
						" and retries the subscription meanwhile (grant the channel to this Redis user, ACL &"+channel+", to wake waiters at once)",
						"error", err.Error())
					denied = true
				}
			case err == nil && denied:
				if _, ok := m.(*redis.Subscription); ok {
					w.log().Info("client: subscribed to " + channel + " again; Wait is woken at once")
					denied = false
				}
			}
			if err != nil {
				m = err // reconnecting or denied: waiters recheck
				select {
				case <-ctx.Done():
					return
				case <-time.After(200 * time.Millisecond):
				}
			}
			select {
			case msgs <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			w.notifyAll()
		case m, ok := <-msgs:
			if !ok {
				return
			}
			w.handle(m)
		}
	}
}

// handle dispatches what the subscription received: a message wakes the
// watchers of its instance; anything else wakes every watcher, since a
// notification may have been missed.
func (w *waiter) handle(m any) {
	switch m := m.(type) {
	case *redis.Message:
		w.notify(m.Payload)
	case *redis.Subscription:
		// (Re)subscribed: anything published while the subscription was
		// down was missed, so every watcher reads its statuses again,
		// before Ready reports the subscription live.
		w.notifyAll()
		w.setLive(m.Kind == "subscribe")
	case error:
		// Errored (Redis restarting, or denied): not live until the
		// subscription is confirmed again.
		w.setLive(false)
		w.notifyAll()
	default:
		w.notifyAll()
	}
}

// isPermissionError reports whether err is Redis's NOPERM (an ACL denial).
func isPermissionError(err error) bool {
	var rerr redis.Error
	return errors.As(err, &rerr) && strings.HasPrefix(rerr.Error(), "NOPERM")
}

func (w *waiter) notify(instanceID string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for wt := range w.watches[instanceID] {
		wt.ids[instanceID] = struct{}{}
		signal(wt.ch)
	}
}

func (w *waiter) notifyAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, set := range w.watches {
		for wt := range set {
			wt.all = true
			signal(wt.ch)
		}
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (w *waiter) close() {
	w.mu.Lock()
	w.closed = true
	cancel, done := w.cancel, w.done
	w.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}
