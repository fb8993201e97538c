package worker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/trace/noop"
)

// TestCachedAttributeSetsRecordTheSameAttributes: measurements recorded
// through the cache of attribute sets carry exactly the attributes they
// name, for cached entries and past the cache bound.
func TestCachedAttributeSetsRecordTheSameAttributes(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	tel, err := newTelemetry(noop.NewTracerProvider(), sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	if err != nil {
		t.Fatal(err)
	}
	tel.attrSetsMax = 8
	ctx := context.Background()
	_, span := tel.tracer.Start(ctx, "x")
	for range 3 {
		tel.endActivity(ctx, span, time.Now(), "Charge", "success", nil)
	}
	tel.endActivity(ctx, span, time.Now(), "Charge", "app_error", nil)
	for i := range int(tel.attrSetsMax) + 10 { // fills the cache, then goes past it
		tel.add(ctx, tel.starts, 1, "orchestration", fmt.Sprint("o", i), "version", "1.0.0", "initiated_by", "client")
	}
	if n := tel.attrSetsLen.Load(); n > tel.attrSetsMax {
		t.Fatalf("%d cached sets, more than the bound %d", n, int(tel.attrSetsMax))
	}
	tel.add(ctx, tel.starts, 1, "orchestration", fmt.Sprint("o", int(tel.attrSetsMax)+5), "version", "1.0.0", "initiated_by", "client")

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			d, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				continue
			}
			for _, p := range d.DataPoints {
				got[m.Name+" "+p.Attributes.Encoded(attribute.DefaultEncoder())] = p.Value
			}
		}
	}
	for key, want := range map[string]int64{
		"duroworker.activity.executions activity=Charge,outcome=success":                                                           3,
		"duroworker.activity.executions activity=Charge,outcome=app_error":                                                         1,
		"duroworker.orchestration.starts initiated_by=client,orchestration=o0,version=1.0.0":                                       1,
		fmt.Sprintf("duroworker.orchestration.starts initiated_by=client,orchestration=o%d,version=1.0.0", int(tel.attrSetsMax)+5): 2,
	} {
		if got[key] != want {
			t.Errorf("%s = %d, want %d", key, got[key], want)
		}
	}
	if len(got) != 2+int(tel.attrSetsMax)+10 {
		t.Errorf("%d series, want %d", len(got), 2+int(tel.attrSetsMax)+10)
	}
}
