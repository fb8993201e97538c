// Package chaos is duroworker's fault-injection suite: real redis-server and
// real worker processes (tests/chaos/chaosworker) run the orchestrations of
// package shapes while the suite kills, freezes and restarts them, cuts and
// stalls their connections, and takes Redis's memory away. At the end it
// checks every instance (exact output, history integrity, activity runs
// counted outside Redis, no leftover work, no dead letters, counters, no
// panics or data races in the workers) and logs a summary.
//
// Without build tags TestChaos runs its short version (inside `make test`);
// with -tags chaos (`make chaos`) the full one. docs/operations.md ("What the
// fault-injection suite survives") describes both and reports figures.
package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/internal/redistest"
	"github.com/duroworker/duroworker/queue"
	"github.com/duroworker/duroworker/tests/chaos/shapes"
)

// prefix is the namespace of the suite's instances.
const prefix = "chaos"

// harness is one run of TestChaos.
type harness struct {
	t     *testing.T
	cfg   config
	dir   string
	bin   string
	srv   *redistest.Server
	admin *redis.Client // direct to Redis: faults and checks
	rdb   *redis.Client // direct to Redis: the suite's client
	c     *client.Client
	proxy *proxy

	mu      sync.Mutex
	gen     int
	procs   []*workerProc // every process ever started
	slots   []*workerProc // the current process of each worker slot
	faults  []faultRecord
	frozen  bool // redis-server is SIGSTOPped
	anomaly map[string]int
	errs    map[string]int // client errors by call

	started atomic.Int64 // roots started
	ended   atomic.Int64 // roots whose Wait returned an ended state
	waitErr atomic.Int64 // Waits that gave up

	paceFrom time.Time
	paceOver time.Duration
	paceDone atomic.Bool // the faults are over: start the rest at once

	recs []record // activity runs, read by the checks

	raiseMu sync.Mutex
	toRaise map[string]bool // Event instances whose event is not delivered yet
}

// faultRecord is one injected fault.
type faultRecord struct {
	kind       string
	node       string // worker faults: the node hit
	start, end time.Time
}

// TestMain removes the worker binary built by the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// TestChaos runs the fault-injection suite; see the package comment.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("fault-injection suite: starts redis-server and worker processes")
	}
	cfg := loadConfig(t)
	h := &harness{t: t, cfg: cfg, dir: t.TempDir(), anomaly: map[string]int{}, errs: map[string]int{}, toRaise: map[string]bool{}}
	if keep := os.Getenv("DUROWORKER_CHAOS_KEEP"); keep != "" {
		// Keep the worker logs and records for a post-mortem.
		if err := os.MkdirAll(keep, 0o755); err != nil {
			t.Fatal(err)
		}
		h.dir = keep
	}
	h.bin = buildWorker(t)
	h.srv = redistest.StartWith(t, redistest.Config{AppendOnly: true, AppendFsync: "always",
		Args: []string{"--maxmemory-policy", "noeviction"}})
	t.Cleanup(func() { // never leave redis-server stopped for the harness's own cleanup
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.frozen {
			_ = syscall.Kill(h.srv.Pid(), syscall.SIGCONT)
		}
	})
	h.admin = h.srv.Client(t)
	h.rdb = h.srv.Client(t)
	h.c = client.New(queue.New(h.rdb, queue.Options{Prefix: prefix}))
	t.Cleanup(func() { _ = h.c.Close() })
	h.proxy = startProxy(t, h.srv.Addr())
	for i := range cfg.Workers {
		h.slots = append(h.slots, h.startWorker(fmt.Sprintf("w%d", i)))
	}
	t.Cleanup(func() {
		h.mu.Lock()
		procs := h.procs
		h.mu.Unlock()
		for _, w := range procs {
			w.signal(syscall.SIGCONT)
			w.kill()
		}
	})
	t.Logf("chaos: %d instances, %d in flight, %d workers, faults %v x%d, worker race detector %v",
		cfg.Instances, cfg.InFlight, cfg.Workers, cfg.Faults, cfg.Rounds, raceEnabled)

	began := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var bg sync.WaitGroup
	waitCtx, waitCancel := context.WithCancel(ctx)
	defer waitCancel()
	// Starts are spread evenly over the expected length of the fault
	// schedule, so that every fault hits instances in every stage.
	var schedule time.Duration
	for range cfg.Rounds {
		for _, kind := range cfg.Faults {
			schedule += cfg.Gap + h.expectedLength(kind)
		}
	}
	h.paceFrom, h.paceOver = began, schedule
	bg.Add(3)
	go func() { defer bg.Done(); h.runProgress(ctx, began) }()
	startersDone := make(chan struct{})
	go func() { defer bg.Done(); h.runStarter(ctx, waitCtx, startersDone) }()
	go func() { defer bg.Done(); h.runRaiser(ctx) }()

	// Faults, one after the other.
	n := 0
	for r := range cfg.Rounds {
		for _, kind := range cfg.Faults {
			time.Sleep(cfg.Gap)
			h.inject(kind, n)
			n++
			if r == 0 && n == 1 {
				t.Logf("chaos: first fault after %s, %d roots ended so far", time.Since(began).Round(time.Millisecond), h.ended.Load())
			}
		}
	}
	h.paceDone.Store(true)
	faultsDone := time.Now()

	// Drain: every root must end.
	select {
	case <-startersDone:
	case <-time.After(cfg.Drain):
		t.Errorf("after %s of draining only %d of %d roots ended (%d started); checking what there is",
			cfg.Drain, h.ended.Load(), cfg.Instances, h.started.Load())
		h.diagnose()
		waitCancel()
	}
	<-startersDone
	cancel()
	bg.Wait()
	finished := time.Now()

	rep := h.check(context.Background())
	rep.began, rep.faultsDone, rep.finished = began, faultsDone, finished
	h.stopWorkers()
	h.scanLogs(rep)
	t.Log("\n" + rep.summary(h))
}

// allowed is how many roots may have been started by now.
func (h *harness) allowed() int {
	if h.paceDone.Load() || h.paceOver <= 0 {
		return h.cfg.Instances
	}
	return 1 + int(float64(h.cfg.Instances)*float64(time.Since(h.paceFrom))/float64(h.paceOver))
}

// expectedLength is about how long a fault of kind lasts, for pacing.
func (h *harness) expectedLength(kind string) time.Duration {
	switch kind {
	case faultWorkerStop:
		return max(h.cfg.ActivityLock, h.cfg.OrchLock) + 2*time.Second
	case faultWorkerKill, faultWorkerTerm, faultRedisKill:
		return time.Second
	case faultDropReplies, faultBlackhole, faultRedisFreeze, faultRedisOOM:
		return h.cfg.FaultFor
	}
	return 0
}

// runStarter starts the roots, at most InFlight at a time and paced over the
// fault schedule, and waits for each to end.
func (h *harness) runStarter(ctx, waitCtx context.Context, done chan<- struct{}) {
	sem := make(chan struct{}, h.cfg.InFlight)
	var waits sync.WaitGroup
	defer func() {
		waits.Wait()
		close(done)
	}()
	for i := range h.cfg.Instances {
		for i >= h.allowed() {
			select {
			case <-waitCtx.Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
		select {
		case sem <- struct{}{}:
		case <-waitCtx.Done():
			return
		}
		id := shapes.InstanceID(i)
		if !h.startRoot(waitCtx, i) {
			<-sem
			return
		}
		h.started.Add(1)
		waits.Add(1)
		go func() {
			defer waits.Done()
			defer func() { <-sem }()
			st, err := h.c.Wait(waitCtx, id)
			if err != nil || !st.State.Ended() {
				h.waitErr.Add(1)
				return
			}
			h.ended.Add(1)
		}()
	}
}

// startRoot starts root i (and enqueues the queue message of an Event
// instance), retrying through faults. A retried Start that finds the
// instance already there counts as an anomaly (issue 8, defect 12): the
// first attempt created it and lost its reply.
func (h *harness) startRoot(ctx context.Context, i int) bool {
	id, shape := shapes.InstanceID(i), shapes.ShapeOf(i)
	failed := false
	for {
		err := h.c.Start(ctx, id, shape, shapes.Input(i))
		if err == nil {
			break
		}
		if errors.Is(err, client.ErrInstanceExists) {
			// Only this loop starts this id: an earlier attempt, or go-redis
			// resending this one after a lost reply, created it.
			if failed {
				h.count(h.anomaly, "start: ErrInstanceExists after a failed attempt")
			} else {
				h.count(h.anomaly, "start: ErrInstanceExists on the first call (go-redis resent it)")
			}
			break
		}
		failed = true
		h.count(h.errs, "start")
		if !sleepCtx(ctx, 100*time.Millisecond) {
			return false
		}
	}
	if shape != shapes.Event {
		return true
	}
	for {
		err := h.c.EnqueueEvent(ctx, id, shapes.QueueName, shapes.QueueData(id))
		if err == nil {
			break
		}
		h.count(h.errs, "enqueue")
		if !sleepCtx(ctx, 100*time.Millisecond) {
			return false
		}
	}
	h.raiseMu.Lock()
	h.toRaise[id] = true
	h.raiseMu.Unlock()
	return true
}

// runRaiser raises the external event of every Event instance once it has
// published that it waits for it, retrying through faults.
func (h *harness) runRaiser(ctx context.Context) {
	failed := map[string]bool{}
	for sleepCtx(ctx, 100*time.Millisecond) {
		h.raiseMu.Lock()
		ids := make([]string, 0, len(h.toRaise))
		for id := range h.toRaise {
			ids = append(ids, id)
		}
		h.raiseMu.Unlock()
		for _, id := range ids {
			st, err := h.c.Status(ctx, id)
			if err != nil {
				h.count(h.errs, "status")
				continue
			}
			if st.CustomStatus != shapes.Waiting {
				continue
			}
			err = h.c.RaiseEvent(ctx, id, shapes.EventName, shapes.EventData(id))
			switch {
			case err == nil:
			case errors.Is(err, client.ErrInstanceEnded):
				// It was waiting for this event: an earlier attempt, or
				// go-redis resending this one, delivered it.
				if failed[id] {
					h.count(h.anomaly, "raise: ErrInstanceEnded after a failed attempt")
				} else {
					h.count(h.anomaly, "raise: ErrInstanceEnded on the first call (go-redis resent it)")
				}
			default:
				failed[id] = true
				h.count(h.errs, "raise")
				continue
			}
			h.raiseMu.Lock()
			delete(h.toRaise, id)
			h.raiseMu.Unlock()
		}
	}
}

// runProgress logs how far the run is every 30 seconds.
func (h *harness) runProgress(ctx context.Context, began time.Time) {
	for sleepCtx(ctx, 30*time.Second) {
		h.mu.Lock()
		nf := len(h.faults)
		h.mu.Unlock()
		h.t.Logf("chaos: %s: %d faults injected, %d of %d roots started, %d ended",
			time.Since(began).Round(time.Second), nf, h.started.Load(), h.cfg.Instances, h.ended.Load())
	}
}

func (h *harness) count(m map[string]int, key string) {
	h.mu.Lock()
	m[key]++
	h.mu.Unlock()
}

// sleepCtx sleeps for d; it reports false when ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// inject runs fault number n of the given kind and records it.
func (h *harness) inject(kind string, n int) {
	t := h.t
	ctx := context.Background()
	slot := n % len(h.slots)
	w := h.slots[slot]
	rec := faultRecord{kind: kind, start: time.Now()}
	switch kind {
	case faultWorkerKill:
		// A crash: a new process with a new node id takes the slot.
		rec.node = w.node
		w.kill()
		h.slots[slot] = h.startWorker(fmt.Sprintf("w%d-%d", slot, n))
	case faultWorkerStop:
		// Frozen past every lock timeout, then continued: its locks have been
		// taken over meanwhile, its late acks must change nothing.
		rec.node = w.node
		w.signal(syscall.SIGSTOP)
		time.Sleep(max(h.cfg.ActivityLock, h.cfg.OrchLock) + 2*time.Second)
		w.signal(syscall.SIGCONT)
	case faultWorkerTerm:
		// A graceful restart with the same node id.
		rec.node = w.node
		if !w.terminate(30 * time.Second) {
			t.Errorf("worker %s did not shut down within 30s of SIGTERM (killed)", w.node)
		}
		h.slots[slot] = h.startWorker(w.node)
	case faultRedisKill:
		pid := h.srv.Pid()
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("SIGKILL redis-server %d: %v", pid, err)
		}
		time.Sleep(300 * time.Millisecond)
		h.srv.Restart(t) // same port and directory: the AOF (appendfsync always) is loaded
	case faultScriptFlush:
		if err := h.admin.ScriptFlush(ctx).Err(); err != nil {
			t.Errorf("SCRIPT FLUSH: %v", err)
		}
	case faultClientKill:
		// Kills the suite's own connections too (it reconnects).
		_ = h.admin.ClientKillByFilter(ctx, "TYPE", "normal").Err()
	case faultDropReplies:
		h.proxy.setDrop(20)
		time.Sleep(h.cfg.FaultFor)
		h.proxy.setDrop(0)
	case faultBlackhole:
		h.proxy.pause(true)
		time.Sleep(h.cfg.FaultFor)
		h.proxy.pause(false)
	case faultReset:
		h.proxy.resetAll()
	case faultRedisFreeze:
		pid := h.srv.Pid()
		h.mu.Lock()
		h.frozen = true
		h.mu.Unlock()
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatalf("SIGSTOP redis-server %d: %v", pid, err)
		}
		time.Sleep(h.cfg.FaultFor)
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
			t.Fatalf("SIGCONT redis-server %d: %v", pid, err)
		}
		h.mu.Lock()
		h.frozen = false
		h.mu.Unlock()
	case faultRedisOOM:
		// maxmemory below what is used, with noeviction: every write is
		// refused with OOM until it is lifted.
		if err := h.admin.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
			t.Fatalf("CONFIG SET maxmemory 1: %v", err)
		}
		time.Sleep(h.cfg.FaultFor)
		for {
			err := h.admin.ConfigSet(ctx, "maxmemory", "0").Err()
			if err == nil {
				break
			}
			t.Logf("lifting maxmemory: %v (retrying)", err)
			time.Sleep(100 * time.Millisecond)
		}
	default:
		t.Fatalf("unknown fault kind %q", kind)
	}
	rec.end = time.Now()
	h.mu.Lock()
	h.faults = append(h.faults, rec)
	h.mu.Unlock()
}

// stopWorkers shuts the workers down gracefully; one that hangs is an error.
func (h *harness) stopWorkers() {
	for _, w := range h.slots {
		if !w.terminate(30 * time.Second) {
			h.t.Errorf("worker %s did not shut down within 30s of SIGTERM at the end", w.node)
		}
	}
}

// diagnose logs what waits where when instances do not end, and makes every
// live worker print its goroutines (SIGQUIT) into its stderr file.
func (h *harness) diagnose() {
	ctx := context.Background()
	if d, err := h.c.GetQueueDepths(ctx); err == nil {
		h.t.Logf("queue depths: orchestrations %+v activities %+v timers %d", d.Orchestrations, d.Activities, d.Timers)
	}
	if nodes, err := h.admin.ZRangeWithScores(ctx, queue.NewKeys(prefix).NodesKey(), 0, -1).Result(); err == nil {
		h.t.Logf("live nodes: %v", nodes)
	}
	for _, w := range h.slots {
		w.signal(syscall.SIGQUIT)
		<-w.done
		h.t.Logf("worker %s goroutines are in %s", w.node, w.stderr)
	}
}
