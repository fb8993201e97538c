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
		{"backlog", nil, Options{N: 60}},
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
	runs["backlog"] = wrap(runBacklog)
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
			if c.name == "backlog" {
				for _, m := range []string{result.MFirstEnd, result.MP99, result.MStartAll} {
					if _, ok := res.Get(m); !ok {
						t.Fatalf("backlog without %s: %+v", m, res)
					}
				}
				if n, _ := res.Get(result.MFirstEnd); n <= 0 {
					t.Fatalf("first completion %v ms", n)
				}
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

// TestEndAtWait runs drain and steady with the end at the client's Wait on
// a real redis-server: everything completes, every latency is measured,
// the params say so, and the caller's status reads show in the round
// trips (at least one more per orchestration than with the end at the
// ended notification). No speed is asserted.
func TestEndAtWait(t *testing.T) {
	if testing.Short() {
		t.Skip("real redis-server")
	}
	rdb := redistest.Start(t).Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rt := map[bool]float64{}
	for _, wait := range []bool{false, true} {
		o := Options{N: 10, EndAtWait: wait, Prefix: "t-steady-" + map[bool]string{false: "notify", true: "wait"}[wait], Timeout: 30 * time.Second, Poll: 5 * time.Millisecond}
		res, err := runSteady(ctx, rdb, o)
		if err != nil || !res.OK() {
			t.Fatalf("steady wait=%v: %v (%+v)", wait, err, res)
		}
		if strings.Contains(res.Params, "end=wait") != wait {
			t.Fatalf("steady wait=%v: params %q", wait, res.Params)
		}
		for _, n := range res.Notes {
			if strings.Contains(n, "latencies measured") || strings.Contains(n, "client.Wait") {
				t.Fatalf("steady wait=%v: %s", wait, n)
			}
		}
		if _, ok := res.Get(result.MP50); !ok {
			t.Fatalf("steady wait=%v: no p50: %+v", wait, res)
		}
		rt[wait], _ = res.Get(result.MRoundTrips)
	}
	if rt[true] < rt[false]+0.9 {
		t.Fatalf("round trips/orch with client.Wait %.2f, without %.2f: the caller's reads are not measured", rt[true], rt[false])
	}
	res, err := runDrain(ctx, rdb, Options{N: 20, EndAtWait: true, Prefix: "t-drain-wait", Timeout: 30 * time.Second, Poll: 5 * time.Millisecond})
	if err != nil || !res.OK() || res.Completed != 20 || !strings.Contains(res.Params, "end=wait") {
		t.Fatalf("drain end=wait: %v (%+v)", err, res)
	}
}
