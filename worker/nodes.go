package worker

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/duroworker/duroworker/capability"
	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/queue"
)

// describe returns what this node says about itself with its buckets
// (queue.NodeDescription, shown to operators).
func (w *Worker) describe() *queue.NodeDescription {
	d := &queue.NodeDescription{
		Host: w.host, PID: os.Getpid(), Started: w.startedAt.UnixMilli(),
		Engine: engine.Version, Tags: w.opts.Tags.String(), Sessions: int(w.sess.Held()),
	}
	if w.runsOrchestrations() {
		d.ReplayRange = w.serves.ReplayRange.String()
		d.OrchestrationConcurrency = w.opts.OrchestrationConcurrency
	}
	if w.runsActivities() {
		d.ActivityConcurrency = w.opts.ActivityConcurrency
	}
	return d
}

// checkNodeIDFree refuses to start under a NodeID that another live process
// advertises: Start takes back the locks recorded under its NodeID (see
// queue.Store.ReclaimEarlierLocks), which would be that process's. A node
// still listed as live may also be an earlier process of this node that
// died (a restart under a stable name): the check waits until its
// advertisement lapses (dead: Start goes on) or is renewed (alive:
// ErrNodeIDInUse), for at most its ttl. When Redis does not answer, Start
// goes on, as with its other checks.
func (w *Worker) checkNodeIDFree(ctx context.Context) error {
	first, listed, err := w.store.GetNode(ctx, w.opts.NodeID)
	if err != nil || !listed || !first.Live {
		return nil
	}
	wait := first.TTL
	if wait <= 0 || wait > time.Minute {
		wait = time.Minute
	}
	w.log.Info("this node id is advertised by another process; waiting for it to lapse or advertise again",
		"host", first.Description.Host, "pid", first.Description.PID, "live_until", first.LiveUntil, "at_most", wait)
	deadline := time.Now().Add(wait + time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		n, listed, err := w.store.GetNode(ctx, w.opts.NodeID)
		if err != nil {
			continue
		}
		if !listed || !n.Live {
			return nil // lapsed or withdrawn: that process is gone
		}
		if n.LiveUntil.After(first.LiveUntil) {
			d := n.Description
			return fmt.Errorf("%w: %s (host %q, pid %d, started %s); give each process its own NodeID",
				ErrNodeIDInUse, w.opts.NodeID, d.Host, d.PID, time.UnixMilli(d.Started).UTC().Format(time.RFC3339))
		}
	}
	return nil
}

// LastAdvertised returns when this node last advertised itself to Redis
// successfully (zero before the first time). A readiness probe can require
// it to be recent: a node whose heartbeats fail is not seen by the fleet.
func (w *Worker) LastAdvertised() time.Time {
	ns := w.advertised.Load()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// maxUnservedBuckets bounds how many unserved buckets one worker adds to its
// fetches.
const maxUnservedBuckets = 100

// heartbeatLoop advertises (after Start's first advertisement, every
// NodeHeartbeat) the buckets this node serves and picks up buckets
// that hold work no live node serves (an orchestration name or version, or an
// activity, that no node has registered). Fetching those lets the worker
// back the work off and finally poison it, instead of leaving it waiting
// forever; as soon as a node that serves such a bucket advertises it, the
// bucket is no longer fetched by the others.
func (w *Worker) heartbeatLoop(ctx context.Context) {
	defer w.fetchers.Done()
	tick := time.NewTicker(w.opts.NodeHeartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		w.heartbeat(ctx)
	}
}

func (w *Worker) heartbeat(ctx context.Context) {
	var advertised []string
	if w.runsOrchestrations() {
		advertised = append(advertised, w.servedOrchestrationBuckets()...)
	}
	if w.runsActivities() {
		if w.opts.Tags.mode == tagsAny {
			if known, err := w.store.WorkBuckets(ctx); err == nil {
				buckets := w.opts.Tags.buckets(w.serves.Activities, known)
				w.mu.Lock()
				added := len(buckets) > len(w.activityBuckets)
				w.activityBuckets = buckets
				w.mu.Unlock()
				if added {
					kick(w.workKick)
				}
			}
		}
		w.mu.Lock()
		advertised = append(advertised, w.activityBuckets...)
		w.mu.Unlock()
		advertised = append(advertised, w.sess.NodeBucket())
	}
	if err := w.store.AdvertiseDescribedNode(ctx, w.opts.NodeID, w.describe(), advertised, 3*w.opts.NodeHeartbeat); err != nil {
		if ctx.Err() == nil {
			w.log.Warn("advertising this node failed", "err", err)
		}
		return
	}
	w.advertised.Store(time.Now().UnixNano())
	// Take over the work of nodes that died, before UnservedBuckets forgets
	// them.
	if n, err := w.store.ReclaimDeadNodes(ctx, w.opts.NodeID, 0); err != nil {
		if ctx.Err() == nil {
			w.log.Warn("reclaiming the locks of dead nodes failed", "err", err)
		}
	} else if n > 0 {
		w.log.Info("reclaimed the locks of dead nodes", "locks", n)
	}
	unserved, err := w.store.UnservedBuckets(ctx, maxUnservedBuckets)
	if err != nil {
		if ctx.Err() == nil {
			w.log.Warn("listing unserved buckets failed", "err", err)
		}
		return
	}
	var orch, work []string
	for _, b := range unserved {
		pb, err := capability.ParseBucket(b)
		if err != nil {
			continue
		}
		switch pb.Kind {
		case capability.Start, capability.StartVersion:
			orch = append(orch, b)
		case capability.Execution:
			// Never replay an execution pinned outside this worker's range,
			// even when nobody else serves it: it waits for a compatible node.
			if ok, err := w.serves.ReplayRange.ContainsString(pb.Engine); err == nil && ok {
				orch = append(orch, b)
			}
		case capability.Activity:
			// Only names this worker lacks: they go down the unregistered
			// path (backoff, then poison). A registered name that this
			// worker's tag filter excludes is not its work.
			if !slices.Contains(w.serves.Activities, pb.Name) {
				work = append(work, b)
			}
			// Tagged work nobody serves is not picked up: it waits for a
			// worker with its tag, and management reports it as unserved.
		}
	}
	w.mu.Lock()
	newOrch := len(orch) > len(w.unservedOrch)
	newWork := len(work) > len(w.unservedWork)
	w.unservedOrch, w.unservedWork = orch, work
	w.mu.Unlock()
	if len(orch) > 0 || len(work) > 0 {
		w.log.Debug("fetching unserved buckets too", "orchestration", orch, "activity", work)
	}
	if newOrch {
		kick(w.orchKick)
	}
	if newWork {
		kick(w.workKick)
	}
}

func (w *Worker) runsOrchestrations() bool {
	return w.opts.OrchestrationConcurrency > 0 && len(w.serves.Orchestrations) > 0
}

func (w *Worker) runsActivities() bool {
	// serves.Activities always holds the built-ins; a worker without user
	// activities still runs them.
	return w.opts.ActivityConcurrency > 0 && w.opts.Tags.mode != tagsNone
}

func (w *Worker) servedOrchestrationBuckets() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.orchBuckets
}

// orchestrationFetchBuckets is what the orchestration dispatcher reads: the
// served buckets plus unserved ones.
func (w *Worker) orchestrationFetchBuckets() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.unservedOrch) == 0 {
		return w.orchBuckets
	}
	return append(append([]string(nil), w.orchBuckets...), w.unservedOrch...)
}

// servesActivityBucket reports whether b is one of the activity buckets
// this worker serves (not counting the unserved ones it fetches too).
func (w *Worker) servesActivityBucket(b string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Contains(w.activityBuckets, b)
}

func (w *Worker) activityFetchBuckets() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.unservedWork) == 0 {
		return w.activityBuckets
	}
	return append(append([]string(nil), w.activityBuckets...), w.unservedWork...)
}
