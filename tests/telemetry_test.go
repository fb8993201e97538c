package tests

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/internal/redistest"
	"github.com/duroworker/duroworker/worker"
)

// TestOneTraceFollowsAnOrchestration: the client's start span, every turn
// and every activity (on two workers) share one trace; activities are
// children of the turn that scheduled them; metrics count what happened.
func TestOneTraceFollowsAnOrchestration(t *testing.T) {
	_, rdb := redistest.StartMini(t)
	e := newEnv(t, rdb, true)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp) // the client uses the global provider
	defer otel.SetTracerProvider(prev)

	orchs := engine.NewOrchestrationRegistry().Register("Traced", func(ctx *engine.OrchestrationContext, in string) (string, error) {
		return ctx.ScheduleActivity("Greet", in).Get()
	}).MustBuild()
	acts := engine.NewActivityRegistry().Register("Greet", func(ctx *engine.ActivityContext, in string) (string, error) {
		return "hi " + in, nil
	}).MustBuild()
	e.startWorker(orchs, nil, worker.Options{NodeID: "orchestrator", TracerProvider: tp, MeterProvider: mp, Tags: worker.NoActivities()})
	e.startWorker(nil, acts, worker.Options{NodeID: "activities", TracerProvider: tp, MeterProvider: mp})
	if err := e.client.Start(context.Background(), "traced", "Traced", "you"); err != nil {
		t.Fatal(err)
	}
	if st := e.wait("traced"); st.Output != "hi you" {
		t.Fatalf("%+v", st)
	}
	eventually(t, 5e9, "spans ended", func() bool { return len(rec.Ended()) >= 4 })

	byName := map[string][]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		byName[s.Name()] = append(byName[s.Name()], s)
	}
	start, turns, acts2 := byName["start Traced"], byName["orchestration Traced"], byName["activity Greet"]
	if len(start) != 1 || len(turns) != 2 || len(acts2) != 1 {
		t.Fatalf("spans: %v", byName)
	}
	traceID := start[0].SpanContext().TraceID()
	for _, s := range append(turns, acts2...) {
		if s.SpanContext().TraceID() != traceID {
			t.Fatalf("span %s is in trace %s, want %s", s.Name(), s.SpanContext().TraceID(), traceID)
		}
	}
	firstTurn := turns[0]
	if turns[1].StartTime().Before(firstTurn.StartTime()) {
		firstTurn = turns[1]
	}
	if acts2[0].Parent().SpanID() != firstTurn.SpanContext().SpanID() {
		t.Fatal("the activity span is not a child of the turn that scheduled it")
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	sums := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if d, ok := m.Data.(metricdata.Sum[int64]); ok {
				for _, p := range d.DataPoints {
					sums[m.Name] += p.Value
				}
			}
		}
	}
	for name, want := range map[string]int64{
		"duroworker.orchestration.starts":      1,
		"duroworker.orchestration.completions": 1,
		"duroworker.activity.executions":       1,
	} {
		if sums[name] != want {
			t.Errorf("%s = %d, want %d (all: %v)", name, sums[name], want, sums)
		}
	}
}
