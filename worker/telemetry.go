package worker

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/internal/replay"
	"github.com/duroworker/duroworker/queue"
)

const instrumentation = "github.com/duroworker/duroworker/worker"

// telemetry holds the worker's OpenTelemetry instruments. With the default
// (global, no-op unless the application installs providers) it costs next to
// nothing.
type telemetry struct {
	tracer           trace.Tracer
	starts           metric.Int64Counter
	completions      metric.Int64Counter
	failures         metric.Int64Counter
	poison           metric.Int64Counter
	activityRuns     metric.Int64Counter
	turnDuration     metric.Float64Histogram
	activityDuration metric.Float64Histogram

	attrSets    sync.Map     // attrKey -> metric.MeasurementOption
	attrSetsLen atomic.Int32 // entries in attrSets, bounded by attrSetsMax
	attrSetsMax int32        // maxAttrSets; smaller in tests
}

// attrKey is up to three attribute key-value pairs of a measurement.
type attrKey [6]string

// maxAttrSets bounds the cache of attribute sets. Its keys are registered
// names and versions and a few fixed words, so the bound is reached only
// with a very large registry or with names read from the store that this
// worker does not serve; past it, sets are built per measurement.
const maxAttrSets = 4096

// attrs returns the measurement option of the attributes kv (key, value,
// key, value...; at most three pairs), building the attribute set once per
// distinct kv instead of at every measurement.
func (t *telemetry) attrs(kv ...string) metric.MeasurementOption {
	var k attrKey
	copy(k[:], kv)
	if o, ok := t.attrSets.Load(k); ok {
		return o.(metric.MeasurementOption)
	}
	a := make([]attribute.KeyValue, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		a = append(a, attribute.String(kv[i], kv[i+1]))
	}
	o := metric.WithAttributeSet(attribute.NewSet(a...))
	if t.attrSetsLen.Load() < t.attrSetsMax {
		if _, loaded := t.attrSets.LoadOrStore(k, o); !loaded {
			t.attrSetsLen.Add(1)
		}
	}
	return o
}

// add adds n to c with the attributes kv, when c is enabled (an SDK is
// installed and no view drops it).
func (t *telemetry) add(ctx context.Context, c metric.Int64Counter, n int64, kv ...string) {
	if c.Enabled(ctx) {
		c.Add(ctx, n, t.attrs(kv...))
	}
}

// record records v in h with the attributes kv, when h is enabled.
func (t *telemetry) record(ctx context.Context, h metric.Float64Histogram, v float64, kv ...string) {
	if h.Enabled(ctx) {
		h.Record(ctx, v, t.attrs(kv...))
	}
}

var propagator = propagation.TraceContext{}

// secondsBuckets are histogram bounds for durations from a fraction of a
// millisecond (a cached turn) to minutes (a long activity).
var secondsBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300}

// queueDepthsEvery bounds how often the queue-depth gauge asks the store
// (one bounded script over the bucket registry).
const queueDepthsEvery = 10 * time.Second

// observeGauges registers the gauges read at collection time: sessions held
// by this worker, and the store's queue depths (cached for queueDepthsEvery).
func (t *telemetry) observeGauges(mp metric.MeterProvider, w *Worker) (metric.Registration, error) {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := mp.Meter(instrumentation)
	sessions, err := m.Int64ObservableGauge("duroworker.sessions.active",
		metric.WithDescription("Sessions this worker holds."))
	if err != nil {
		return nil, err
	}
	depth, err := m.Int64ObservableGauge("duroworker.queue.depth",
		metric.WithDescription("Entries waiting in the store by kind (orchestration, activity, timer) and state (ready, delayed, locked)."))
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	var cached queue.QueueDepths
	var at time.Time
	return m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		o.ObserveInt64(sessions, w.sess.Held(), metric.WithAttributes(attribute.String("worker", w.opts.NodeID)))
		mu.Lock()
		defer mu.Unlock()
		if time.Since(at) > queueDepthsEvery {
			qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			d, err := w.store.QueueDepths(qctx)
			cancel()
			if err == nil {
				cached, at = d, time.Now()
			}
		}
		for kind, buckets := range map[string][]queue.BucketDepth{"orchestration": cached.Orchestrations, "activity": cached.Activities} {
			var ready, delayed, locked int64
			for _, b := range buckets {
				ready, delayed, locked = ready+int64(b.Ready), delayed+int64(b.Delayed), locked+int64(b.Locked)
			}
			for state, v := range map[string]int64{"ready": ready, "delayed": delayed, "locked": locked} {
				o.ObserveInt64(depth, v, metric.WithAttributes(attribute.String("kind", kind), attribute.String("state", state)))
			}
		}
		o.ObserveInt64(depth, int64(cached.Timers), metric.WithAttributes(attribute.String("kind", "timer"), attribute.String("state", "delayed")))
		return nil
	}, sessions, depth)
}

func newTelemetry(tp trace.TracerProvider, mp metric.MeterProvider) (*telemetry, error) {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := mp.Meter(instrumentation)
	t := &telemetry{tracer: tp.Tracer(instrumentation), attrSetsMax: maxAttrSets}
	var err error
	for _, c := range []struct {
		dst  *metric.Int64Counter
		name string
		desc string
	}{
		{&t.starts, "duroworker.orchestration.starts", "Executions started, by orchestration, version and how (client, continue_as_new, parent)."},
		{&t.completions, "duroworker.orchestration.completions", "Executions ended, by orchestration, version and status (completed, failed, continued_as_new)."},
		{&t.failures, "duroworker.orchestration.failures", "Failed executions by orchestration and error category."},
		{&t.poison, "duroworker.poison", "Poisoned messages by kind (orchestration, activity)."},
		{&t.activityRuns, "duroworker.activity.executions", "Activity executions by activity and outcome (success, app_error, cancelled, poison)."},
	} {
		if *c.dst, err = m.Int64Counter(c.name, metric.WithDescription(c.desc)); err != nil {
			return nil, err
		}
	}
	if t.turnDuration, err = m.Float64Histogram("duroworker.orchestration.turn.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of one orchestration turn: fetch to ack."),
		metric.WithExplicitBucketBoundaries(secondsBuckets...)); err != nil {
		return nil, err
	}
	if t.activityDuration, err = m.Float64Histogram("duroworker.activity.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of one activity execution."),
		metric.WithExplicitBucketBoundaries(secondsBuckets...)); err != nil {
		return nil, err
	}
	return t, nil
}

// extract returns a context carrying the remote span of traceparent.
func extract(traceparent string) context.Context {
	ctx := context.Background()
	if traceparent == "" {
		return ctx
	}
	return propagator.Extract(ctx, propagation.MapCarrier{"traceparent": traceparent})
}

// inject returns the traceparent of ctx's span ("" when none is recording).
func inject(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return "" // nothing to propagate (TraceContext injects nothing)
	}
	c := propagation.MapCarrier{}
	propagator.Inject(ctx, c)
	return c["traceparent"]
}

// startTurn opens the span of one orchestration turn under the
// orchestration's trace.
func (t *telemetry) startTurn(traceparent, instance, name, version string, execution int64, node string) (context.Context, trace.Span) {
	return t.tracer.Start(extract(traceparent), "orchestration "+name,
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("duroworker.instance", instance),
			attribute.Int64("duroworker.execution", execution),
			attribute.String("duroworker.orchestration", name),
			attribute.String("duroworker.version", version),
			attribute.String("duroworker.worker", node),
		))
}

// endTurn records a finished turn.
func (t *telemetry) endTurn(ctx context.Context, span trace.Span, start time.Time, name, version string, res *replay.TurnResult, startedBy string) {
	t.record(ctx, t.turnDuration, time.Since(start).Seconds(), "orchestration", name, "version", version)
	if startedBy != "" {
		t.add(ctx, t.starts, 1, "orchestration", name, "version", version, "initiated_by", startedBy)
	}
	if res == nil {
		span.End()
		return
	}
	status := ""
	switch res.Status {
	case replay.StatusCompleted:
		status = "completed"
	case replay.StatusFailed:
		status = "failed"
		t.add(ctx, t.failures, 1, "orchestration", name, "category", string(res.Failure.Category))
		if res.Failure.Category == engine.CategoryPoison {
			t.add(ctx, t.poison, 1, "kind", "orchestration")
		}
		if span.IsRecording() {
			span.SetStatus(codes.Error, res.Failure.Error())
		}
	case replay.StatusContinuedAsNew:
		status = "continued_as_new"
	}
	if status != "" {
		t.add(ctx, t.completions, 1, "orchestration", name, "version", version, "status", status)
		if span.IsRecording() {
			span.SetAttributes(attribute.String("duroworker.status", status))
		}
	}
	span.End()
}

// startActivity opens the span of one activity execution under the turn
// that scheduled it.
func (t *telemetry) startActivity(req replay.ActivityRequest, attempt int, node string) (context.Context, trace.Span) {
	return t.tracer.Start(extract(req.Trace), "activity "+req.Name,
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("duroworker.instance", req.Instance),
			attribute.Int64("duroworker.execution", req.Execution),
			attribute.String("duroworker.activity", req.Name),
			attribute.Int64("duroworker.activity_id", req.EventID),
			attribute.Int("duroworker.attempt", attempt),
			attribute.String("duroworker.worker", node),
		))
}

// endActivity records a finished activity execution.
func (t *telemetry) endActivity(ctx context.Context, span trace.Span, start time.Time, name, outcome string, err error) {
	t.add(ctx, t.activityRuns, 1, "activity", name, "outcome", outcome)
	t.record(ctx, t.activityDuration, time.Since(start).Seconds(), "activity", name, "outcome", outcome)
	if outcome == "poison" {
		t.add(ctx, t.poison, 1, "kind", "activity")
	}
	if span.IsRecording() {
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		span.SetAttributes(attribute.String("duroworker.outcome", outcome))
	}
	span.End()
}
