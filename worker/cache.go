package worker

import (
	"container/list"
	"sync"

	"github.com/duroworker/duroworker/internal/replay"
)

// replayCache is the sticky replay cache: live executors kept between turns,
// least recently used first out. An executor is taken out while its turn runs
// and put back after a successful ack, so two turns never share one.
type replayCache struct {
	mu    sync.Mutex
	limit int
	order *list.List // front = most recent; values are *cacheEntry
	items map[string]*list.Element
}

type cacheEntry struct {
	instance string
	x        *replay.Executor
	bucket   string // the ready bucket the ack that cached x left the instance in
}

func newReplayCache(limit int) *replayCache {
	return &replayCache{limit: limit, order: list.New(), items: map[string]*list.Element{}}
}

func (c *replayCache) enabled() bool { return c.limit > 0 }

// take removes and returns the executor of instance, if cached.
func (c *replayCache) take(instance string) *replay.Executor {
	c.mu.Lock()
	defer c.mu.Unlock()
	el := c.items[instance]
	if el == nil {
		return nil
	}
	c.order.Remove(el)
	delete(c.items, instance)
	return el.Value.(*cacheEntry).x
}

// remove drops the entry of instance if it still holds x.
func (c *replayCache) remove(instance string, x *replay.Executor) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el := c.items[instance]; el != nil && el.Value.(*cacheEntry).x == x {
		c.order.Remove(el)
		delete(c.items, instance)
	}
}

// readyBucket returns the ready bucket recorded with the executor of
// instance by put, if one is cached.
func (c *replayCache) readyBucket(instance string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el := c.items[instance]
	if el == nil {
		return "", false
	}
	return el.Value.(*cacheEntry).bucket, true
}

// put stores x for instance, closing whatever it replaces or evicts.
func (c *replayCache) put(instance string, x *replay.Executor) {
	c.putIn(instance, x, "")
}

// putIn is put recording bucket, the ready bucket where the ack that
// follows leaves the instance (see readyBucket).
func (c *replayCache) putIn(instance string, x *replay.Executor, bucket string) {
	if !c.enabled() {
		x.Close()
		return
	}
	var evicted []*replay.Executor
	c.mu.Lock()
	if el := c.items[instance]; el != nil {
		evicted = append(evicted, el.Value.(*cacheEntry).x)
		c.order.Remove(el)
	}
	c.items[instance] = c.order.PushFront(&cacheEntry{instance: instance, x: x, bucket: bucket})
	for c.order.Len() > c.limit {
		el := c.order.Back()
		c.order.Remove(el)
		e := el.Value.(*cacheEntry)
		delete(c.items, e.instance)
		evicted = append(evicted, e.x)
	}
	c.mu.Unlock()
	for _, x := range evicted {
		x.Close()
	}
}

// len returns the number of cached executors.
func (c *replayCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

// clear closes every cached executor.
func (c *replayCache) clear() {
	c.mu.Lock()
	var all []*replay.Executor
	for _, el := range c.items {
		all = append(all, el.Value.(*cacheEntry).x)
	}
	c.items = map[string]*list.Element{}
	c.order.Init()
	c.mu.Unlock()
	for _, x := range all {
		x.Close()
	}
}
