package dashboard

import (
	"context"
	"net/http"
	"time"
)

// keepSamples is how many samples of each namespace are kept (2 minutes
// at the default interval).
const keepSamples = 60

// sample is one reading of a namespace's counters and queues.
type sample struct {
	At        time.Time `json:"at"`
	Completed int64     `json:"completed"`
	Failed    int64     `json:"failed"`
	Events    int64     `json:"events"`
	Running   int64     `json:"running"`
	Pending   int64     `json:"pending"`
	Ready     int       `json:"ready"`
	Locked    int       `json:"locked"`
	Delayed   int       `json:"delayed"`
	Unserved  int       `json:"unserved"`
}

// livePoint is a rate between two samples, as /api/live returns it.
type livePoint struct {
	At time.Time `json:"at"`
	// CompletionsPerSec and FailuresPerSec are instances that completed or
	// failed per second; EventsPerSec is history events written per
	// second (the throughput of orchestration turns).
	CompletionsPerSec float64 `json:"completions_per_sec"`
	FailuresPerSec    float64 `json:"failures_per_sec"`
	EventsPerSec      float64 `json:"events_per_sec"`
	// Ready, Locked and Delayed are the queue depths summed over buckets.
	Ready    int   `json:"ready"`
	Locked   int   `json:"locked"`
	Delayed  int   `json:"delayed"`
	Unserved int   `json:"unserved_buckets"`
	Running  int64 `json:"running"`
	Pending  int64 `json:"pending"`
}

type liveData struct {
	Namespace string      `json:"namespace"`
	Interval  float64     `json:"interval_seconds"`
	Points    []livePoint `json:"points"`
}

func (h *Handler) sampleLoop(ctx context.Context, every time.Duration) {
	defer close(h.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		for _, p := range h.order {
			h.sampleOnce(ctx, h.ns[p])
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (h *Handler) sampleOnce(ctx context.Context, ns *nsState) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	m, err := ns.Client.GetSystemMetrics(ctx)
	if err != nil {
		h.logger.Warn("dashboard: sampling metrics", "namespace", ns.Prefix, "err", err)
		return
	}
	s := sample{At: time.Now(), Completed: m.Completed, Failed: m.Failed, Events: m.Events, Running: m.Running, Pending: m.Pending}
	q, err := ns.Client.GetQueueDepths(ctx)
	if err != nil {
		h.logger.Warn("dashboard: sampling queues", "namespace", ns.Prefix, "err", err)
		return
	}
	for _, b := range append(q.Orchestrations, q.Activities...) {
		s.Ready += b.Ready
		s.Locked += b.Locked
		s.Delayed += b.Delayed
		if b.Unserved {
			s.Unserved++
		}
	}
	ns.mu.Lock()
	ns.samples = append(ns.samples, s)
	if len(ns.samples) > keepSamples+1 {
		ns.samples = ns.samples[len(ns.samples)-keepSamples-1:]
	}
	ns.mu.Unlock()
}

// rate is the positive change per second of a counter (deletes lower the
// counters: a negative change counts as none).
func rate(a, b int64, dt float64) float64 {
	if b < a || dt <= 0 {
		return 0
	}
	return float64(b-a) / dt
}

func (h *Handler) live(w http.ResponseWriter, r *http.Request) {
	ns, err := h.namespace(r)
	if err != nil {
		h.fail(w, r, http.StatusNotFound, err.Error(), true)
		return
	}
	ns.mu.Lock()
	samples := append([]sample(nil), ns.samples...)
	ns.mu.Unlock()
	d := liveData{Namespace: ns.Prefix, Points: []livePoint{}}
	if h.cfg.SampleEvery > 0 {
		d.Interval = h.cfg.SampleEvery.Seconds()
	} else {
		d.Interval = 2
	}
	for i := 1; i < len(samples); i++ {
		a, b := samples[i-1], samples[i]
		dt := b.At.Sub(a.At).Seconds()
		d.Points = append(d.Points, livePoint{At: b.At,
			CompletionsPerSec: rate(a.Completed, b.Completed, dt), FailuresPerSec: rate(a.Failed, b.Failed, dt),
			EventsPerSec: rate(a.Events, b.Events, dt), Ready: b.Ready, Locked: b.Locked, Delayed: b.Delayed,
			Unserved: b.Unserved, Running: b.Running, Pending: b.Pending})
	}
	writeJSON(w, http.StatusOK, d)
}
