package dashboard

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/internal/redistest"
	"github.com/duroworker/duroworker/queue"
)

// TestPagingAt100k times /api/instances over 100,000 instances of a real
// redis-server: pages by cursor, a status page, a time-range start and a
// bounded scan. It takes a while to fill the store, so it runs only with
// DUROWORKER_DASHBOARD_LARGE=1 (docs/dashboard.md has its numbers).
func TestPagingAt100k(t *testing.T) {
	if os.Getenv("DUROWORKER_DASHBOARD_LARGE") != "1" {
		t.Skip("set DUROWORKER_DASHBOARD_LARGE=1 to fill a store with 100,000 instances")
	}
	const n = 100_000
	rdb := redistest.Start(t).Client(t)
	c := client.New(queue.New(rdb, queue.Options{Prefix: "big"}))
	t.Cleanup(func() { _ = c.Close() })
	began := time.Now()
	var wg sync.WaitGroup
	var mid time.Time
	var midOnce sync.Once
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < n; i += 8 {
				if i == n/2 {
					midOnce.Do(func() { mid = time.Now() })
				}
				if err := c.Start(context.Background(), fmt.Sprintf("big-%06d", i), "Big", ""); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("created %d instances in %s", n, time.Since(began).Round(time.Millisecond))
	f := &fixture{t: t}
	h, err := New(Config{Namespaces: []Namespace{{Prefix: "big", Client: c}}, SampleEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	f.h = h
	srvFixture(f)
	for _, p := range []string{
		"/api/instances",
		"/api/instances?cursor=50000",
		"/api/instances?cursor=99950",
		"/api/instances?status=Pending&cursor=99950",
		"/api/instances?limit=500&cursor=70000",
		"/api/instances?from=" + url.QueryEscape(mid.UTC().Format(time.RFC3339Nano)),
		"/api/instances?id=big-09999",
		"/api/instances?name=Nothing",
		"/instances?cursor=99950",
	} {
		start := time.Now()
		code, body, _ := f.get(p)
		d := time.Since(start)
		if code != 200 {
			t.Errorf("GET %s: %d %.300s", p, code, body)
		}
		t.Logf("GET %-60s %8s (%d bytes)", p, d.Round(10*time.Microsecond), len(body))
		if d > 2*time.Second {
			t.Errorf("GET %s took %s", p, d)
		}
	}
}
