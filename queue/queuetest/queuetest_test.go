package queuetest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duroworker/duroworker/internal/redistest"
	"github.com/duroworker/duroworker/queue"
)

// TestMiniredis runs the suite on an in-process miniredis whose clock the
// suite moves (SetTime for Lua's TIME, FastForward for key expiry).
func TestMiniredis(t *testing.T) {
	t.Parallel()
	m, rdb := redistest.StartMini(t)
	var mu sync.Mutex
	now := time.UnixMilli(1_700_000_000_000)
	m.SetTime(now)
	var n atomic.Int64
	Run(t, Factory{
		Name: "miniredis",
		New: func(t *testing.T) *queue.Store {
			return queue.New(rdb, queue.Options{Prefix: fmt.Sprintf("qt%d", n.Add(1))})
		},
		Advance: func(t *testing.T, d time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			now = now.Add(d)
			m.SetTime(now)
			m.FastForward(d)
		},
		FlushScripts: func(t *testing.T) {
			if err := rdb.ScriptFlush(context.Background()).Err(); err != nil {
				t.Fatalf("SCRIPT FLUSH: %v", err)
			}
		},
	})
}

// TestRedis runs the suite on a real redis-server, in real time; each case
// gets its own prefix on one shared server.
func TestRedis(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	var n atomic.Int64
	Run(t, Factory{
		Name: "redis",
		Real: true,
		New: func(t *testing.T) *queue.Store {
			return queue.New(rdb, queue.Options{Prefix: fmt.Sprintf("qt%d", n.Add(1))})
		},
		FlushScripts: func(t *testing.T) {
			if err := rdb.ScriptFlush(context.Background()).Err(); err != nil {
				t.Fatalf("SCRIPT FLUSH: %v", err)
			}
		},
	})
}

// TestCoverage checks that every category has at least as many cases as
// upstream duroxide's provider validation module on the same subject, and
// that case names are unique.
func TestCoverage(t *testing.T) {
	total, upstream := 0, 0
	for _, c := range categories() {
		names := map[string]bool{}
		for _, tc := range c.cases {
			if names[tc.name] {
				t.Errorf("%s: duplicate case %s", c.name, tc.name)
			}
			names[tc.name] = true
		}
		if len(c.cases) < c.upstream {
			t.Errorf("%s: %d cases, upstream has %d", c.name, len(c.cases), c.upstream)
		}
		t.Logf("%-22s %3d cases (upstream %d)", c.name, len(c.cases), c.upstream)
		total += len(c.cases)
		upstream += c.upstream
	}
	t.Logf("%-22s %3d cases (upstream %d)", "total", total, upstream)
}
