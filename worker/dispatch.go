package worker

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// dispatcher describes one fetch loop: orchestration turns or activities.
// Its items run on a pool (concurrency and run are the pool's).
type dispatcher[T any] struct {
	what      string
	kick      chan struct{} // wakes an idle loop
	reconnect chan struct{} // the wake-up subscription reconnected: ends an error backoff
	minIdle   time.Duration // shortest wait after an empty fetch
	before    func()        // runs before each fetch, if set
	// fetch locks up to n items under requestID: the same id until a fetch
	// succeeds, so that a retry after an error whose reply was lost gets
	// back what that fetch locked (a fetch script answers a request id it
	// already ran with the items it locked, see queue.FetchWorkRequest)
	// instead of leaving them locked, unrun, until their locks expire.
	fetch func(requestID string, n int) (items []T, nextWake time.Duration, err error)
	// block, if set, replaces the idle wait after a fetch that did not fill
	// its slots: it waits (at most wait) for new work itself, with free
	// slots to fill, and returns when there may be some.
	block func(ctx context.Context, free int, wait time.Duration)
	// The pool's run processes one item on one of its goroutines.
	// Calling detach (at most once takes effect) frees the item's slot
	// before run returns and retires the goroutine once run returns: an
	// activity that ignores its cancellation past the grace period keeps
	// it while the pool starts another.
}

// pool is the dispatcher's set of long-lived goroutines: at most
// concurrency attached ones, started on demand and kept while the
// dispatcher runs, so a turn or an activity runs on a goroutine whose stack
// has already grown instead of on a new one.
// Its slots are also reserved by eager dispatch (see reserve), from the
// goroutines of the other pool.
type pool[T any] struct {
	w           *Worker
	concurrency int
	run         func(item T, detach func()) // see dispatcher.run
	slots       chan struct{}
	work        chan T
	mu          sync.Mutex
	live        int  // attached goroutines (detached ones no longer count)
	closed      bool // the dispatcher ended: no more reservations
	held        int  // slots reserved and not yet settled
}

// newPool returns the pool of a dispatcher that runs items with run on at
// most concurrency goroutines.
func newPool[T any](w *Worker, concurrency int, run func(item T, detach func())) *pool[T] {
	return &pool[T]{w: w, concurrency: concurrency, run: run,
		slots: make(chan struct{}, concurrency), work: make(chan T)}
}

// reserve takes up to n free slots without waiting, for items that an ack
// will claim (eager dispatch), and returns how many it took: 0 when the
// pool is full, n <= 0 or its dispatcher has ended. Every reservation is
// settled by settle.
func (p *pool[T]) reserve(n int) int {
	if p == nil || n <= 0 {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0
	}
	k := 0
	for k < n {
		select {
		case p.slots <- struct{}{}:
			k++
			continue
		default:
		}
		break
	}
	p.held += k
	return k
}

// settle runs items (at most reserved of them), each on a reserved slot,
// exactly as fetched items, and frees the reserved slots left over.
func (p *pool[T]) settle(reserved int, items []T) {
	if reserved == 0 {
		return
	}
	if len(items) > reserved {
		// Never: a claim asks for at most its reservation. Drop the extra
		// items rather than exceed the capacity; their locks expire.
		p.w.log.Error("eager dispatch returned more items than reserved; the extra ones are left to expire",
			"reserved", reserved, "items", len(items))
		items = items[:reserved]
	}
	for _, item := range items {
		p.submit(item)
	}
	for i := len(items); i < reserved; i++ {
		<-p.slots
	}
	p.mu.Lock()
	p.held -= reserved
	if p.closed && p.held == 0 {
		close(p.work)
	}
	p.mu.Unlock()
}

// close ends the pool once its dispatcher has ended: idle goroutines end
// when no reservation is pending (else the last settle closes work).
func (p *pool[T]) close() {
	p.mu.Lock()
	p.closed = true
	if p.held == 0 {
		close(p.work)
	}
	p.mu.Unlock()
}

// submit hands item, which holds a slot, to an idle goroutine or to a new
// one. A blocking send is safe once every goroutine is started: item's slot
// is held, so at most concurrency-1 attached goroutines are busy.
func (p *pool[T]) submit(item T) {
	p.w.inflight.Add(1)
	select {
	case p.work <- item:
		return
	default:
	}
	p.mu.Lock()
	start := p.live < p.concurrency
	if start {
		p.live++
	}
	p.mu.Unlock()
	if start {
		go p.loop(item)
		return
	}
	p.work <- item
}

// loop runs item, then every item it receives until the dispatcher ends
// (work is closed) or a run detaches it.
func (p *pool[T]) loop(item T) {
	s := &poolSlot[T]{p: p}
	s.detachFn = s.detach // one func value per goroutine, not per item
	for {
		if s.runOne(item) {
			return
		}
		var ok bool
		if item, ok = <-p.work; !ok {
			p.mu.Lock()
			p.live--
			p.mu.Unlock()
			return
		}
	}
}

// poolSlot is one pool goroutine's state for the item it runs.
type poolSlot[T any] struct {
	p        *pool[T]
	detachFn func()
	done     atomic.Bool // the item's slot was freed: by detach or at the end of its run
}

// runOne runs one item and frees its slot; it reports whether the run
// detached this goroutine.
func (s *poolSlot[T]) runOne(item T) (detached bool) {
	s.done.Store(false)
	s.p.run(item, s.detachFn)
	if !s.done.CompareAndSwap(false, true) {
		return true
	}
	s.p.release()
	return false
}

// detach frees the slot of the running item and takes this goroutine out of
// the pool (see dispatcher.run).
func (s *poolSlot[T]) detach() {
	if !s.done.CompareAndSwap(false, true) {
		return
	}
	s.p.mu.Lock()
	s.p.live--
	s.p.mu.Unlock()
	s.p.release()
}

func (p *pool[T]) release() {
	p.w.inflight.Done()
	<-p.slots
}

// dispatch runs d until ctx ends: it waits for a free slot, fetches as many
// items as there are free slots, runs each on a goroutine of its pool, backs off
// on store errors (100 ms doubling to 5 s, cut short when the wake-up
// subscription reconnects: Redis is reachable again; the retry reuses the
// failed fetch's request id), and after a fetch that
// did not fill its slots blocks until kicked, until the earliest known due
// item, or for BlockTimeout.
func dispatch[T any](ctx context.Context, w *Worker, d dispatcher[T], p *pool[T]) {
	slots := p.slots
	defer p.close() // idle pool goroutines end; busy ones finish their item
	errs := 0
	// requestID and requestMax name the failed fetch that the next one
	// retries; "" when the last fetch succeeded.
	requestID, requestMax := "", 0
	for ctx.Err() == nil {
		if d.before != nil {
			d.before()
		}
		// Wait for one free slot, then take every other free one.
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		n := 1
		for n < cap(slots) {
			select {
			case slots <- struct{}{}:
				n++
				continue
			default:
			}
			break
		}
		// A retry may answer with up to requestMax items: it keeps the id
		// only when they fit the free slots (eager claims take slots too).
		if requestID == "" || n < requestMax {
			requestID, requestMax = uuid.NewString(), n
		}
		items, nextWake, err := d.fetch(requestID, n)
		for i := len(items); i < n; i++ {
			<-slots
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			errs++
			if errs == 1 || errs%50 == 0 {
				w.log.Error("fetching "+d.what+" failed; retrying", "err", err, "consecutive_errors", errs)
			}
			idleWait(ctx, d.reconnect, errorBackoff(errs))
			continue
		}
		requestID, requestMax = "", 0
		select { // a reconnect seen while fetching normally is stale
		case <-d.reconnect:
		default:
		}
		if errs > 0 {
			w.log.Info("store reachable again", "after_errors", errs)
			errs = 0
		}
		for _, item := range items {
			p.submit(item)
		}
		if len(items) < n {
			// The fetch did not fill the free slots: there is nothing more
			// to take now. Wait for a wake-up (new work publishes one, and
			// a wake-up that arrived meanwhile is buffered in d.kick), the
			// earliest delayed item, or BlockTimeout, instead of fetching
			// again at once and coming back empty.
			wait := w.opts.BlockTimeout
			if nextWake > 0 && nextWake < wait {
				wait = nextWake
			}
			if len(items) == 0 {
				wait = max(wait, d.minIdle)
			}
			if d.block != nil {
				select {
				case <-d.kick: // kicked while fetching: fetch again at once
				default:
					d.block(ctx, n-len(items), wait)
				}
				continue
			}
			idleWait(ctx, d.kick, wait)
		}
	}
}
