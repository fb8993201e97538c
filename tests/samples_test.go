package tests

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/worker"
)

// TestFanOutFanIn schedules 50 activities at once across two workers and
// joins them.
func TestFanOutFanIn(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env) {
		orchs := engine.NewOrchestrationRegistry().Register("FanOut", func(ctx *engine.OrchestrationContext, in string) (string, error) {
			var fs []*engine.Future[int]
			var all []engine.Awaitable
			for i := 1; i <= 50; i++ {
				f := engine.ScheduleActivityTyped[int](ctx, "Square", i)
				fs = append(fs, f)
				all = append(all, f)
			}
			ctx.Join(all...)
			sum := 0
			for _, f := range fs {
				v, err := f.Get()
				if err != nil {
					return "", err
				}
				sum += v
			}
			return fmt.Sprint(sum), nil
		}).MustBuild()
		ab := engine.NewActivityRegistry()
		engine.RegisterActivityTyped(ab, "Square", func(ctx *engine.ActivityContext, n int) (int, error) { return n * n, nil })
		acts := ab.MustBuild()
		e.startWorker(orchs, acts, worker.Options{NodeID: "w1"})
		e.startWorker(orchs, acts, worker.Options{NodeID: "w2"})
		if err := e.client.Start(context.Background(), "fan", "FanOut", ""); err != nil {
			t.Fatal(err)
		}
		if st := e.wait("fan"); st.Output != "42925" {
			t.Fatalf("%+v", st)
		}
	})
}

// TestSagaCompensates books three steps; the third fails, so the completed
// steps are compensated in reverse order and the orchestration reports it.
func TestSagaCompensates(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env) {
		var mu sync.Mutex
		var ledger []string
		record := func(s string) {
			mu.Lock()
			defer mu.Unlock()
			ledger = append(ledger, s)
		}
		orchs := engine.NewOrchestrationRegistry().Register("Trip", func(ctx *engine.OrchestrationContext, in string) (string, error) {
			steps := []string{"flight", "hotel", "car"}
			var done []string
			for _, s := range steps {
				if _, err := ctx.ScheduleActivity("Book", s+":"+in).Get(); err != nil {
					for i := len(done) - 1; i >= 0; i-- {
						if _, cerr := ctx.ScheduleActivity("Cancel", done[i], engine.WithRetry(engine.NewRetryPolicy(3))).Get(); cerr != nil {
							return "", fmt.Errorf("compensating %s: %w", done[i], cerr)
						}
					}
					return "", fmt.Errorf("trip not booked, compensated %v: %w", done, err)
				}
				done = append(done, s)
			}
			return "booked " + strings.Join(done, ","), nil
		}).MustBuild()
		acts := engine.NewActivityRegistry().
			Register("Book", func(ctx *engine.ActivityContext, in string) (string, error) {
				if strings.HasPrefix(in, "car:") && strings.HasSuffix(in, "no-cars") {
					return "", errors.New("no car available")
				}
				record("book " + strings.SplitN(in, ":", 2)[0])
				return "ok", nil
			}).
			Register("Cancel", func(ctx *engine.ActivityContext, in string) (string, error) {
				record("cancel " + in)
				return "ok", nil
			}).MustBuild()
		e.startWorker(orchs, acts, worker.Options{})
		ctx := context.Background()
		if err := e.client.Start(ctx, "trip-ok", "Trip", "ok"); err != nil {
			t.Fatal(err)
		}
		if st := e.wait("trip-ok"); st.Output != "booked flight,hotel,car" {
			t.Fatalf("%+v", st)
		}
		mu.Lock()
		ledger = nil
		mu.Unlock()
		if err := e.client.Start(ctx, "trip-fail", "Trip", "no-cars"); err != nil {
			t.Fatal(err)
		}
		st := e.wait("trip-fail")
		if st.State != client.StateFailed || !strings.Contains(st.Failure.Error(), "compensated [flight hotel]: no car available") {
			t.Fatalf("%+v", st.Failure)
		}
		mu.Lock()
		defer mu.Unlock()
		got := append([]string(nil), ledger...)
		if fmt.Sprint(got) != "[book flight book hotel cancel hotel cancel flight]" {
			sort.Strings(got)
			t.Fatalf("ledger %v", ledger)
		}
	})
}
