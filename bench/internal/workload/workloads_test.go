package workload

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/bench/internal/result"
	"github.com/duroworker/duroworker/internal/redistest"
)

// TestWorkloadsComplete runs every duroworker workload tiny on miniredis
// and checks that everything it started completed. No speed is asserted.
func TestWorkloadsComplete(t *testing.T) {
	cases := []struct {
		name string
		run  func(context.Context, Options) (result.Result, error)
		opts Options
	}{
		{"drain", nil, Options{N: 20, K: 2}},
		{"steady one at a time", nil, Options{N: 10}},
		{"steady rate", nil, Options{Rate: 200, Duration: 100 * time.Millisecond}},
		{"sequential", nil, Options{N: 1, K: 5}},
		{"sequential many", nil, Options{N: 5, K: 3}},
		{"long", nil, Options{K: 30}},
		{"fanout", nil, Options{N: 2, K: 20}},
		{"fanout retry", nil, Options{N: 2, K: 20, Retry: true, FailEvery: 7}},
		{"timers", nil, Options{N: 10, Delay: 200 * time.Millisecond}},
		{"sessions", nil, Options{N: 2, K: 10, Workers: 2}},
		{"inflight", nil, Options{N: 30}},
	}
	runs := map[string]func(context.Context, Options) (result.Result, error){}
	_, rdb := redistest.StartMini(t)
	wrap := func(f func(context.Context, *redis.Client, Options) (result.Result, error)) func(context.Context, Options) (result.Result, error) {
		return func(ctx context.Context, o Options) (result.Result, error) { return f(ctx, rdb, o) }
	}
	runs["drain"] = wrap(runDrain)
	runs["steady one at a time"] = wrap(runSteady)
	runs["steady rate"] = wrap(runSteady)
	runs["sequential"] = wrap(runSequential)
	runs["sequential many"] = wrap(runSequential)
	runs["long"] = wrap(runLong)
	runs["fanout"] = wrap(runFanout)
	runs["fanout retry"] = wrap(runFanout)
	runs["timers"] = wrap(runTimers)
	runs["sessions"] = wrap(runSessions)
	runs["inflight"] = wrap(runInflight)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			o := c.opts
			o.Prefix = "t-" + strings.ReplaceAll(c.name, " ", "-")
			o.Timeout = 45 * time.Second
			o.Poll = 5 * time.Millisecond
			res, err := runs[c.name](ctx, o)
			if err != nil {
				t.Fatalf("%v (%+v)", err, res)
			}
			if !res.OK() || res.Completed != res.Expected || res.Expected == 0 {
				t.Fatalf("not all completed: %+v", res)
			}
			for _, n := range res.Notes {
				t.Log(n)
			}
		})
	}
}

// TestIdleMeasures checks that the idle workload reports a rate.
func TestIdleMeasures(t *testing.T) {
	_, rdb := redistest.StartMini(t)
	res, err := runIdle(context.Background(), rdb, Options{Duration: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := res.Get(result.MIdleRoundTrips); !ok {
		t.Fatalf("no round trips reported: %+v", res)
	}
}
