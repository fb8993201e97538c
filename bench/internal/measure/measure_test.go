package measure

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duroworker/duroworker/bench/internal/result"
)

// TestTrackerCountsEachExpectedIDOnce: ends of ids that were not expected,
// or that ended already, change nothing; only measured ids give a latency.
func TestTrackerCountsEachExpectedIDOnce(t *testing.T) {
	tr := NewTracker()
	t0 := time.Now()
	done := tr.Expect("a", t0, true)
	tr.Expect("warm", t0, false)
	tr.End("a", t0.Add(3*time.Millisecond))
	tr.End("a", t0.Add(time.Hour))
	tr.End("stranger", t0.Add(time.Hour))
	tr.End("warm", t0.Add(time.Millisecond))
	select {
	case <-done:
	default:
		t.Fatal("the channel of an ended id is not closed")
	}
	if tr.Done() != 2 {
		t.Fatalf("done %d, want 2", tr.Done())
	}
	tr.WaitAll(context.Background(), time.Second) // nothing pending: returns at once
	var r result.Result
	p := tr.AddTo(&r, t0)
	if p.N != 1 || p.P50 != 3*time.Millisecond {
		t.Fatalf("percentiles %+v", p)
	}
	if _, ok := r.Get(result.MAchieved); !ok {
		t.Fatalf("no achieved rate: %+v", r.Metrics)
	}
}

// TestScheduleOneAtATime: with Rate 0 the schedule starts N+20 instances,
// the next only once the previous ended, and measures the last N.
func TestScheduleOneAtATime(t *testing.T) {
	tr := NewTracker()
	var r result.Result
	var inFlight atomic.Int64
	started, err := Schedule{N: 5}.Run(context.Background(), tr, &r, nil, func(id string) error {
		if inFlight.Add(1) != 1 {
			return errors.New("started before the previous one ended")
		}
		go func() { inFlight.Add(-1); tr.End(id, time.Now()) }()
		return nil
	})
	if err != nil || started != 25 {
		t.Fatalf("started %d, err %v", started, err)
	}
	if p := tr.AddTo(&r, time.Now()); p.N != 5 {
		t.Fatalf("measured %d latencies, want 5", p.N)
	}
}

// TestScheduleOpenLoop: at a rate, every due start is made, ids are
// distinct, and the offered rate is recorded.
func TestScheduleOpenLoop(t *testing.T) {
	tr := NewTracker()
	var r result.Result
	var mu sync.Mutex
	seen := map[string]bool{}
	started, err := Schedule{Rate: 200, Duration: 100 * time.Millisecond}.Run(context.Background(), tr, &r, nil, func(id string) error {
		mu.Lock()
		defer mu.Unlock()
		if seen[id] || !strings.HasPrefix(id, "sr-") {
			return errors.New("unexpected id " + id)
		}
		seen[id] = true
		return nil
	})
	if err != nil || started != 20 || len(seen) != 20 {
		t.Fatalf("started %d (%d ids), err %v", started, len(seen), err)
	}
	if _, ok := r.Get(result.MOffered); !ok {
		t.Fatalf("no offered rate: %+v", r.Metrics)
	}
}

// TestStartManyReturnsTheFirstError: every index is started once, and a
// failure is returned.
func TestStartManyReturnsTheFirstError(t *testing.T) {
	var calls [100]atomic.Int64
	if err := StartMany(100, 7, func(i int64) error { calls[i].Add(1); return nil }); err != nil {
		t.Fatal(err)
	}
	for i := range calls {
		if calls[i].Load() != 1 {
			t.Fatalf("index %d started %d times", i, calls[i].Load())
		}
	}
	boom := errors.New("boom")
	if err := StartMany(100, 4, func(i int64) error {
		if i == 10 {
			return boom
		}
		return nil
	}); !errors.Is(err, boom) {
		t.Fatalf("err %v, want boom", err)
	}
}

// TestWaitForGivesUp: WaitFor returns at the target, and says how far it
// got when the timeout passes.
func TestWaitForGivesUp(t *testing.T) {
	var n atomic.Int64
	got, err := WaitFor(context.Background(), time.Millisecond, time.Minute, 3, nil, func() (int64, error) { return n.Add(1), nil })
	if err != nil || got != 3 {
		t.Fatalf("got %d, err %v", got, err)
	}
	_, err = WaitFor(context.Background(), time.Millisecond, 5*time.Millisecond, 3, nil, func() (int64, error) { return 1, nil })
	if err == nil || !strings.Contains(err.Error(), "timed out after 5ms: 1 of 3 ended") {
		t.Fatalf("err %v", err)
	}
}

// TestLatenessKeepsTheFirstRecord: a replayed timer does not record again.
func TestLatenessKeepsTheFirstRecord(t *testing.T) {
	var l Lateness
	l.Record("a", 2*time.Millisecond)
	l.Record("a", time.Hour)
	var r result.Result
	l.AddTo(&r)
	if v, ok := r.Get("lateness " + result.MMax); !ok || v != 2 {
		t.Fatalf("lateness max %v %v, want 2 ms", v, ok)
	}
}

// TestTrackerFirst: First is the earliest end of an expected id, whatever
// the order the ends are recorded in; zero before any.
func TestTrackerFirst(t *testing.T) {
	tr := NewTracker()
	if !tr.First().IsZero() {
		t.Fatal("First before any end is not zero")
	}
	t0 := time.Now()
	tr.Expect("a", t0, true)
	tr.Expect("b", t0, true)
	tr.End("stranger", t0.Add(time.Millisecond))
	tr.End("a", t0.Add(5*time.Millisecond))
	tr.End("b", t0.Add(2*time.Millisecond))
	if got := tr.First(); !got.Equal(t0.Add(2 * time.Millisecond)) {
		t.Fatalf("First %v after t0, want 2ms", got.Sub(t0))
	}
}
