// Package worker is duroworker's runtime: it fetches orchestration turns and
// activities from the store, runs them with the engine and the user's
// registries, and acknowledges the results atomically.
//
// A Worker has two dispatchers, one for orchestration turns and one for
// activities. Each blocks while idle (woken by Redis pub/sub, with
// BlockTimeout as a safety net), fetches as many items as it has free slots,
// renews the locks of long-running work, backs off work whose handler is not
// registered here so that an upgraded worker can take it, and turns work that
// failed more than MaxAttempts times into poison. Shutdown stops fetching,
// lets running work finish, and releases what does not finish in time.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/metric"

	"github.com/duroworker/duroworker/capability"
	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/internal/replay"
	"github.com/duroworker/duroworker/internal/retry"
	"github.com/duroworker/duroworker/queue"
	"github.com/duroworker/duroworker/session"
)

// Errors returned by Worker methods.
var (
	ErrAlreadyStarted = errors.New("worker already started")
	ErrNotStarted     = errors.New("worker not started")
	// ErrNodeIDInUse is returned by Start when another live process
	// advertises the worker's NodeID (see Options.NodeID).
	ErrNodeIDInUse = errors.New("node id in use by another live process")
)

// Worker runs orchestrations and activities from one store. Create it with
// New, then call Start once and Shutdown once.
type Worker struct {
	store  *queue.Store
	orchs  *engine.OrchestrationRegistry
	acts   *engine.ActivityRegistry
	opts   Options
	log    *slog.Logger
	serves capability.Serves
	cache  *replayCache
	sess   *session.Manager
	tel    *telemetry
	gauges metric.Registration

	pinRange    sync.Map     // engine pin -> bool: in serves.ReplayRange (replays)
	pinRangeLen atomic.Int32 // entries in pinRange

	mu              sync.Mutex
	started         bool
	startedAt       time.Time    // when Start ran, for the node description
	host            string       // os.Hostname, for the node description
	advertised      atomic.Int64 // Unix ns of the last successful AdvertiseNode
	orchBuckets     []string
	knownPins       map[string]bool
	cancelFetch     context.CancelFunc
	fetchers        sync.WaitGroup
	inflight        sync.WaitGroup
	orchKick        chan struct{}
	workKick        chan struct{}
	orchReconnect   chan struct{} // the wake-up subscription (re)connected
	workReconnect   chan struct{}
	refreshPins     chan struct{}
	activities      map[string]*runningActivity // by work item id
	unservedOrch    []string                    // buckets nobody serves, fetched too
	activityBuckets []string                    // served activity buckets, sorted; fixed after New
	unservedWork    []string
	// The pools of the dispatchers, nil when the worker does not run that
	// kind of item; set by Start before the dispatchers start. Eager
	// dispatch reserves slots in them from the other kind's goroutines.
	orchPool     *pool[queue.OrchestrationItem]
	actPool      *pool[queue.FetchedWork]
	shutdownOnce sync.Once
	// acks sends the acks of turns and activities, batching those that
	// finish together.
	acks *ackBatcher
}

// New returns a worker for store with the given registries. Either registry
// may be nil (an activity-only or orchestration-only worker).
func New(store *queue.Store, orchs *engine.OrchestrationRegistry, acts *engine.ActivityRegistry, opts Options) (*Worker, error) {
	if store == nil {
		return nil, errors.New("worker: nil store")
	}
	o := opts.withDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if orchs == nil {
		orchs = engine.NewOrchestrationRegistry().MustBuild()
	}
	if acts == nil {
		acts = engine.NewActivityRegistry().MustBuild()
	}
	tel, err := newTelemetry(o.TracerProvider, o.MeterProvider)
	if err != nil {
		return nil, fmt.Errorf("worker telemetry: %w", err)
	}
	replayRange := capability.UpTo(semver.MustParse(engine.Version))
	if o.SupportedReplayVersions != nil {
		replayRange = *o.SupportedReplayVersions // checked by Validate
	}
	w := &Worker{
		store: store, orchs: orchs, acts: acts, opts: o,
		log: o.Logger.With("worker", o.NodeID),
		serves: capability.Serves{
			Orchestrations: orchs.All(),
			// Built-in activities run wherever user activities run.
			Activities:  append(acts.Names(), replay.SysActivityGetKV),
			ReplayRange: replayRange,
		},
		cache:         newReplayCache(o.ReplayCacheSize),
		sess:          session.NewManager(store, o.NodeID, o.Sessions, o.Logger),
		tel:           tel,
		knownPins:     map[string]bool{engine.Version: true},
		orchKick:      make(chan struct{}, 1),
		workKick:      make(chan struct{}, 1),
		orchReconnect: make(chan struct{}, 1),
		workReconnect: make(chan struct{}, 1),
		refreshPins:   make(chan struct{}, 1),
		activities:    map[string]*runningActivity{},
		acks:          newAckBatcher(store, o.AckBatchSize),
	}
	w.host, _ = os.Hostname()
	if w.gauges, err = tel.observeGauges(o.MeterProvider, w); err != nil {
		return nil, fmt.Errorf("worker telemetry: %w", err)
	}
	w.orchBuckets = w.serves.OrchestrationBuckets(w.pinList())
	w.activityBuckets = o.Tags.buckets(w.serves.Activities, nil)
	return w, nil
}

// NodeID returns the worker's node id.
func (w *Worker) NodeID() string { return w.opts.NodeID }

// Options returns the options in effect, defaults applied.
func (w *Worker) Options() Options { return w.opts }

// Start checks that Redis lets this worker use the wake-up channels, takes
// back the locks an earlier process under the same NodeID left (see
// queue.Store.ReclaimEarlierLocks), advertises the node, subscribes to
// wake-ups and starts the dispatchers. It returns once they run; they stop
// when ctx is cancelled or Shutdown is called. It fails, starting nothing,
// when the Redis user lacks a permission the worker needs (its scripts
// publish on the channels &{prefix}:* after their writes, and the worker
// subscribes to them), and with ErrNodeIDInUse while another live process
// advertises the NodeID; when Redis cannot be reached it starts anyway and
// the dispatchers retry.
func (w *Worker) Start(ctx context.Context) error {
	w.mu.Lock()
	if w.started {
		w.mu.Unlock()
		return ErrAlreadyStarted
	}
	if err := w.checkEviction(ctx); err != nil {
		w.mu.Unlock()
		return err
	}
	if err := w.checkPermissions(ctx); err != nil {
		w.mu.Unlock()
		return err
	}
	if err := w.checkNodeIDFree(ctx); err != nil {
		w.mu.Unlock()
		return err
	}
	w.started = true
	w.startedAt = time.Now()
	fetchCtx, cancel := context.WithCancel(ctx)
	w.cancelFetch = cancel

	if pins, err := w.store.EnginePins(ctx); err == nil {
		w.addPinsLocked(pins)
	} else {
		w.log.Warn("reading engine pins failed; serving this engine's executions until Redis answers", "err", err)
	}
	w.log.Info("duroworker worker starting",
		"engine", engine.Version, "replay_range", w.serves.ReplayRange.String(),
		"orchestrations", len(w.serves.Orchestrations), "activities", len(w.serves.Activities),
		"orchestration_concurrency", w.opts.OrchestrationConcurrency, "activity_concurrency", w.opts.ActivityConcurrency,
		"replay_cache", w.opts.ReplayCacheSize)
	// Counted among the fetchers so that a Shutdown meanwhile withdraws the
	// node only after this advertisement.
	w.fetchers.Add(1)
	w.mu.Unlock()

	// Both steps below are bounded, as checkPermissions is: when Redis does
	// not answer, the worker starts anyway and the heartbeat loop retries.
	startCtx, cancelStart := context.WithTimeout(fetchCtx, 5*time.Second)
	defer cancelStart()
	// Locks recorded under this node id now are an earlier process's
	// (this one holds none yet): take them back now, not at their deadlines.
	if n, err := w.store.ReclaimEarlierLocks(startCtx, w.opts.NodeID, 0); err != nil {
		if fetchCtx.Err() == nil {
			w.log.Warn("reclaiming the locks of an earlier process of this node failed; they expire at their deadlines", "err", err)
		}
	} else if n > 0 {
		w.log.Info("reclaimed the locks of an earlier process of this node", "locks", n)
	}
	// Advertise before taking any work: a node that holds a lock is always
	// in the node list, so that its death is noticed (dead-node reclaim)
	// and operators and probes see it. A failure is logged and retried by
	// the heartbeat loop, as later ones are.
	w.heartbeat(startCtx)
	w.fetchers.Done()

	w.mu.Lock()
	defer w.mu.Unlock()
	if fetchCtx.Err() != nil { // Shutdown, or ctx ended, during the first heartbeat
		return fetchCtx.Err()
	}
	w.fetchers.Add(2)
	go w.listenWakeups(fetchCtx)
	go w.heartbeatLoop(fetchCtx)
	if w.runsOrchestrations() {
		w.orchPool = newPool(w, w.opts.OrchestrationConcurrency, func(item queue.OrchestrationItem, _ func()) { w.runTurn(item) })
	}
	if w.runsActivities() {
		w.actPool = newPool(w, w.opts.ActivityConcurrency, w.runActivity)
	}
	if w.orchPool != nil {
		w.fetchers.Add(1)
		go w.orchestrationLoop(fetchCtx)
	}
	// Session renewals stop with fetching at shutdown (see Shutdown).
	w.sess.Start(ctx)
	if w.actPool != nil {
		w.fetchers.Add(1)
		go w.activityLoop(fetchCtx)
	}
	return nil
}

// Shutdown stops fetching new work (and the heartbeat and session
// renewals), withdraws the node, and waits for running turns and activities
// to finish. When ctx ends first (or after ActivityCancellationGrace past
// the cancellation of activities), activities still running are released
// to other workers at once, without counting the attempt. It then releases
// the node's sessions. This is the order docs/operations.md describes.
// Shutdown returns ctx.Err() if work had to be released.
func (w *Worker) Shutdown(ctx context.Context) error {
	w.mu.Lock()
	started := w.started
	w.mu.Unlock()
	if !started {
		return ErrNotStarted
	}
	var err error
	w.shutdownOnce.Do(func() {
		// 1. Stop fetching, the heartbeat, and session renewals and reclaims.
		w.cancelFetch()
		w.sess.Stop()
		w.fetchers.Wait()
		// 2. Leave the fleet: the node's buckets and node bucket are no
		// longer served by it. Its running work keeps its locks (a withdrawn
		// node is not a dead one).
		wctx, wcancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := w.store.WithdrawNode(wctx, w.opts.NodeID); err != nil {
			w.log.Warn("withdrawing node failed; it expires on its own", "err", err)
		}
		wcancel()
		// 3. Let running work finish, or 4. release it when ctx ends.
		done := make(chan struct{})
		go func() { w.inflight.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			err = ctx.Err()
			w.releaseActivities()
			select {
			case <-done:
			case <-time.After(w.opts.ActivityCancellationGrace):
				w.log.Warn("activities still running after shutdown grace; their results will be dropped")
			}
		}
		// 5. Give the sessions up.
		rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := w.sess.Release(rctx); err != nil {
			w.log.Warn("releasing sessions failed; they lapse on their own", "err", err)
		}
		rcancel()
		if err := w.gauges.Unregister(); err != nil {
			w.log.Warn("unregistering metric gauges failed", "err", err)
		}
		w.cache.clear()
		w.log.Info("duroworker worker stopped")
	})
	return err
}

// listenWakeups turns store pub/sub notifications into dispatcher kicks. A
// lost notification only delays work until BlockTimeout.
func (w *Worker) listenWakeups(ctx context.Context) {
	defer w.fetchers.Done()
	keys := w.store.Keys()
	ps := w.store.Subscribe(ctx, keys.WakeOrchChannel())
	// Receive does not return on ctx cancellation while blocked on the
	// socket; closing the subscription does.
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()
	defer ps.Close()
	failing := false
	for {
		msg, err := ps.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			// Logged once per outage, not on every retry.
			if !failing {
				failing = true
				if isPermissionError(err) {
					w.log.Error("subscribing to wake-ups is denied by Redis (ACL): this worker will only notice new work every BlockTimeout; grant the channels &"+
						keys.Prefix()+"* to its user", "err", err, "channels", []string{keys.WakeOrchChannel()})
				} else {
					w.log.Warn("wake-up subscription lost; reconnecting", "err", err)
				}
			}
			// go-redis reconnects on the next Receive; kick both sides so
			// nothing waits for a wake-up lost during the outage.
			kick(w.orchKick)
			kick(w.workKick)
			select {
			case <-ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if failing {
				failing = false
				w.log.Info("wake-up subscription restored")
			}
			kick(w.orchKick) // (re)subscribed: catch up on anything missed
			kick(w.workKick)
			// Redis is reachable again: end a dispatcher's error backoff now
			// instead of when it runs out.
			kick(w.orchReconnect)
			kick(w.workReconnect)
		case *redis.Message:
			// Only wake a dispatcher for a bucket it reads: a busy bucket of
			// another fleet must not make this worker fetch in vain.
			switch {
			case w.readsOrchestrationBucket(m.Payload):
				kick(w.orchKick)
			case w.serves.CanServe(m.Payload):
				kick(w.refreshPins) // a bucket for an engine pin this worker has not listed yet
				kick(w.orchKick)
			}
		}
	}
}

func kick(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// readsOrchestrationBucket reports whether the orchestration dispatcher
// fetches from bucket b (served, or unserved by anyone and picked up here).
func (w *Worker) readsOrchestrationBucket(b string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	i := sort.SearchStrings(w.orchBuckets, b)
	return (i < len(w.orchBuckets) && w.orchBuckets[i] == b) || slices.Contains(w.unservedOrch, b)
}

// refreshEnginePins rereads the engine versions pinned by executions in the
// store and recomputes the buckets this worker reads.
func (w *Worker) refreshEnginePins(ctx context.Context) {
	pins, err := w.store.EnginePins(ctx)
	if err != nil {
		w.log.Warn("reading engine pins failed", "err", err)
		return
	}
	w.mu.Lock()
	w.addPinsLocked(pins)
	w.mu.Unlock()
}

func (w *Worker) addPinsLocked(pins []string) {
	changed := false
	for _, p := range pins {
		if !w.knownPins[p] {
			w.knownPins[p] = true
			changed = true
		}
	}
	if changed {
		w.orchBuckets = w.serves.OrchestrationBuckets(w.pinList())
	}
}

func (w *Worker) pinList() []string {
	out := make([]string, 0, len(w.knownPins))
	for p := range w.knownPins {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// idleWait blocks until kicked, until d passes, or until ctx ends.
func idleWait(ctx context.Context, kickCh chan struct{}, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-kickCh:
	case <-t.C:
	}
}

// Bounds of the dispatchers' backoff after store errors; tests change them.
var (
	errorBackoffBase = 100 * time.Millisecond
	errorBackoffMax  = 5 * time.Second
)

// errorBackoff returns the wait after n consecutive store errors: 100 ms
// doubling to 5 s.
func errorBackoff(n int) time.Duration {
	return retry.Doubling(errorBackoffBase, errorBackoffMax, n)
}

// isPermissionError reports whether err is Redis refusing a command or
// channel under its ACL (NOPERM).
func isPermissionError(err error) bool {
	return err != nil && strings.Contains(err.Error(), "NOPERM")
}
