package measure

import (
	"context"
	"sync"
	"time"

	"github.com/duroworker/duroworker/bench/internal/result"
)

// Tracker matches the ends of instances (or tasks) with the starts a
// workload registered, and keeps their end-to-end latencies. It is safe for
// concurrent use.
type Tracker struct {
	mu      sync.Mutex
	pending map[string]trackEntry
	lat     []time.Duration
	done    int64
	first   time.Time
	last    time.Time
}

type trackEntry struct {
	from    time.Time
	measure bool
	done    chan struct{}
}

// NewTracker returns a tracker that expects nothing yet.
func NewTracker() *Tracker {
	return &Tracker{pending: map[string]trackEntry{}}
}

// Expect registers id, its latency measured from from when measure is set;
// the channel is closed when id has ended.
func (t *Tracker) Expect(id string, from time.Time, measure bool) <-chan struct{} {
	ch := make(chan struct{})
	t.mu.Lock()
	t.pending[id] = trackEntry{from: from, measure: measure, done: ch}
	t.mu.Unlock()
	return ch
}

// End records that id ended at at. Ids that were not expected, or already
// ended, are ignored.
func (t *Tracker) End(id string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.pending[id]
	if !ok {
		return
	}
	delete(t.pending, id)
	if e.measure {
		t.lat = append(t.lat, at.Sub(e.from))
	}
	t.done++
	if t.first.IsZero() || at.Before(t.first) {
		t.first = at
	}
	t.last = at
	close(e.done)
}

// First returns when the first expected id ended (zero before any did).
func (t *Tracker) First() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.first
}

// Done returns how many expected ids have ended.
func (t *Tracker) Done() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.done
}

// WaitAll waits until every expected id has ended, at most d, or until ctx
// ends.
func (t *Tracker) WaitAll(ctx context.Context, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		t.mu.Lock()
		n := len(t.pending)
		t.mu.Unlock()
		if n == 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// AddTo records on r the rate achieved from start to the last end and the
// percentiles of the measured latencies, and returns those percentiles.
func (t *Tracker) AddTo(r *result.Result, start time.Time) result.Percentiles {
	t.mu.Lock()
	lat := append([]time.Duration(nil), t.lat...)
	done, last := t.done, t.last
	t.mu.Unlock()
	if elapsed := last.Sub(start); elapsed > 0 {
		r.Add(result.MAchieved, "", float64(done)/elapsed.Seconds())
	}
	p := result.Summarize(lat)
	r.AddPercentiles("", p)
	return p
}

// Lateness keeps how late each instance resumed after its timer was due,
// the first time it is recorded (a replayed turn records nothing new). The
// zero value is ready; it is safe for concurrent use.
type Lateness struct {
	mu sync.Mutex
	by map[string]time.Duration
}

// Record notes that instance id resumed late after its timer was due,
// unless it was noted already.
func (l *Lateness) Record(id string, late time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.by == nil {
		l.by = map[string]time.Duration{}
	}
	if _, seen := l.by[id]; !seen {
		l.by[id] = late
	}
}

// AddTo records the percentiles of the lateness on r ("lateness p50"...).
func (l *Lateness) AddTo(r *result.Result) {
	l.mu.Lock()
	lat := make([]time.Duration, 0, len(l.by))
	for _, d := range l.by {
		lat = append(lat, d)
	}
	l.mu.Unlock()
	r.AddPercentiles("lateness ", result.Summarize(lat))
}
