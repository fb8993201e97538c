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

// recheckInterval is a safety net: every waiter re-reads its status this
// often even without a notification.
const recheckInterval = 30 * time.Second

// deniedPollInterval is how often waiters re-read their status, and the
// subscription is tried again, while Redis denies the subscription (an ACL
// without permission on the channel).
const deniedPollInterval = time.Second

// waiter shares one subscription to the store's "ended" channel among all
// Wait calls of a client. A notification (or a (re)subscription, after which
// anything may have been missed) wakes the matching waiters, which then read
// the status once.
type waiter struct {
	store *queue.Store
	// log returns the logger of subscription problems (slog.Default).
	log func() *slog.Logger

	mu      sync.Mutex
	started bool
	cancel  context.CancelFunc
	done    chan struct{}
	watches map[string]map[chan struct{}]struct{}
}

func newWaiter(store *queue.Store) *waiter {
	return &waiter{store: store, log: slog.Default, watches: map[string]map[chan struct{}]struct{}{}}
}

// watch registers interest in instanceID. The returned channel receives a
// value whenever the instance may have ended; cancel unregisters.
func (w *waiter) watch(ctx context.Context, instanceID string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	if !w.started {
		w.started = true
		bg, cancel := context.WithCancel(context.Background())
		w.cancel = cancel
		w.done = make(chan struct{})
		go w.run(bg)
	}
	set := w.watches[instanceID]
	if set == nil {
		set = map[chan struct{}]struct{}{}
		w.watches[instanceID] = set
	}
	set[ch] = struct{}{}
	w.mu.Unlock()
	return ch, func() {
		w.mu.Lock()
		delete(w.watches[instanceID], ch)
		if len(w.watches[instanceID]) == 0 {
			delete(w.watches, instanceID)
		}
		w.mu.Unlock()
	}
}

func (w *waiter) run(ctx context.Context) {
	defer close(w.done)
	ps := w.store.Subscribe(ctx, w.store.Keys().EndedChannel())
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() }) // unblocks Receive
	defer stop()
	defer ps.Close()
	tick := time.NewTicker(recheckInterval)
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
			if msg, isMsg := m.(*redis.Message); isMsg {
				w.notify(msg.Payload)
			} else {
				w.notifyAll() // subscribed, resubscribed or errored: anything may have been missed
			}
		}
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
	for ch := range w.watches[instanceID] {
		signal(ch)
	}
}

func (w *waiter) notifyAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, set := range w.watches {
		for ch := range set {
			signal(ch)
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
	cancel, done := w.cancel, w.done
	w.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}
