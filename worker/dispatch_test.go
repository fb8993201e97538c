package worker

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// TestPoolReservations: eager dispatch reserves free slots only (never
// more than the pool's concurrency, never after its dispatcher ended),
// settle runs the claimed items on reserved slots and frees the rest, and
// a pool whose dispatcher ended while a reservation was pending still
// runs the claimed items and closes once it is settled.
func TestPoolReservations(t *testing.T) {
	w := &Worker{log: quietLogger()}
	var mu sync.Mutex
	var ran []int
	var wg sync.WaitGroup
	p := newPool(w, 3, func(item int, _ func()) {
		mu.Lock()
		ran = append(ran, item)
		mu.Unlock()
		wg.Done()
	})
	p.slots <- struct{}{} // one slot held by a fetched item
	if got := p.reserve(5); got != 2 {
		t.Fatalf("reserve(5) with 2 free slots = %d", got)
	}
	if got := p.reserve(1); got != 0 {
		t.Fatalf("reserve on a full pool = %d", got)
	}
	wg.Add(1)
	p.settle(2, []int{7}) // one claimed, one reservation unused
	wg.Wait()
	// the unused reservation was given back (item 7 may still hold its slot)
	got := p.reserve(3)
	if got < 1 || got > 2 {
		t.Fatalf("after settle: reserve(3) = %d, want 1 or 2", got)
	}
	p.settle(got, nil) // nothing claimed: every reserved slot is freed
	if got := p.reserve(1); got != 1 {
		t.Fatalf("reserve(1) after an empty settle = %d", got)
	}
	p.close() // the dispatcher ends with a reservation pending
	if got := p.reserve(1); got != 0 {
		t.Fatalf("reserve after close = %d", got)
	}
	wg.Add(1)
	p.settle(1, []int{8})
	wg.Wait()
	if _, ok := <-p.work; ok {
		t.Fatal("work channel still open after the last settle")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ran) != 2 || ran[0] != 7 || ran[1] != 8 {
		t.Fatalf("ran %v, want [7 8]", ran)
	}
}

// TestDispatchRetriesAFailedFetchUnderItsRequestID: a fetch that failed
// (its reply may have been lost after Redis applied it) is retried under
// the same request id, so that the store answers with what it locked; a
// fetch after a success gets a new id, and so does a retry with fewer free
// slots than the failed fetch asked for (its answer might not fit them).
func TestDispatchRetriesAFailedFetchUnderItsRequestID(t *testing.T) {
	w := &Worker{log: quietLogger(), opts: Options{BlockTimeout: time.Hour}}
	type call struct {
		id string
		n  int
	}
	calls, replies := make(chan call), make(chan error)
	reserve := make(chan int, 1)
	p := newPool(w, 3, func(int, func()) {})
	kick, reconnect := make(chan struct{}, 1), make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		dispatch(ctx, w, dispatcher[int]{what: "test", kick: kick, reconnect: reconnect,
			before: func() { // eager dispatch taking slots, when asked
				select {
				case k := <-reserve:
					if got := p.reserve(k); got != k {
						t.Errorf("reserve(%d) = %d", k, got)
					}
				default:
				}
			},
			fetch: func(id string, n int) ([]int, time.Duration, error) {
				calls <- call{id, n}
				return nil, 0, <-replies
			}}, p)
	}()
	next := func(what string) call {
		t.Helper()
		select {
		case c := <-calls:
			return c
		case <-time.After(10 * time.Second):
			t.Fatalf("no %s", what)
			return call{}
		}
	}
	first := next("first fetch")
	replies <- errors.New("reply lost")
	reconnect <- struct{}{} // Redis answers again: the backoff ends
	if retry := next("retry"); retry != first {
		t.Fatalf("retry %+v, want the failed fetch's %+v", retry, first)
	}
	replies <- nil // nothing locked: the dispatcher idles until kicked
	kick <- struct{}{}
	fresh := next("fetch after a success")
	if fresh.id == first.id || fresh.n != 3 {
		t.Fatalf("fetch after a success %+v, want a new id for 3 slots", fresh)
	}
	replies <- errors.New("reply lost")
	reserve <- 2
	reconnect <- struct{}{}
	if smaller := next("retry with one free slot"); smaller.id == fresh.id || smaller.n != 1 {
		t.Fatalf("retry with one free slot %+v, want a new id for 1 slot (failed: %+v)", smaller, fresh)
	}
	replies <- nil
	cancel()
	<-done
	p.settle(2, nil)
}
