package worker

import (
	"sync"
	"testing"
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
