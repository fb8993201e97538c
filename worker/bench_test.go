package worker

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/internal/redistest"
	"github.com/duroworker/duroworker/queue"
)

// processCPU is the CPU time (user + system) this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDrain measures the worker side of draining b.N single-activity
// orchestrations that were started before the worker: ns/op, allocs/op and
// cpu-us/op (this process's CPU: worker, client wait and go-redis; the
// redis-server is another process). It is a tool for profiles and
// before/after comparisons, never an assertion. Run it with a fixed count,
// e.g. -benchtime=2000x, so every run does the same work.
func BenchmarkDrain(b *testing.B) {
	srv := redistest.Start(b)
	rdb := srv.Client(b)
	ctx := context.Background()
	store := queue.New(rdb, queue.Options{Prefix: "bench"})
	orchs := engine.NewOrchestrationRegistry().Register("One", func(ctx *engine.OrchestrationContext, in string) (string, error) {
		return ctx.ScheduleActivity("Echo", in).Get()
	}).MustBuild()
	acts := engine.NewActivityRegistry().Register("Echo", func(_ *engine.ActivityContext, in string) (string, error) {
		return in, nil
	}).MustBuild()
	c := client.New(store)
	defer c.Close()
	ids := make([]string, b.N)
	for i := range ids {
		ids[i] = fmt.Sprintf("drain-%d", i)
		if err := c.Start(ctx, ids[i], "One", `"x"`); err != nil {
			b.Fatal(err)
		}
	}
	w, err := New(store, orchs, acts, Options{Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	if err := w.Start(ctx); err != nil {
		b.Fatal(err)
	}
	for st, err := range c.WaitMany(ctx, ids) {
		if err != nil {
			b.Fatal(err)
		}
		if st.State != client.StateCompleted {
			b.Fatalf("%s ended %s", st.InstanceID, st.State)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64((processCPU()-cpu).Microseconds())/float64(b.N), "cpu-us/op")
	if err := w.Shutdown(ctx); err != nil {
		b.Fatal(err)
	}
}
