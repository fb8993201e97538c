package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

func TestMetricsEndpointServesPrometheusText(t *testing.T) {
	m, err := startMetrics("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	c, _ := m.Provider.Meter("test").Int64Counter("duroworker.orchestration.starts")
	c.Add(context.Background(), 2, metric.WithAttributes(attribute.String("orchestration", "Hello")))
	resp, err := http.Get("http://" + m.Addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), `duroworker_orchestration_starts_total{`) || !strings.Contains(string(body), `orchestration="Hello"`) {
		t.Fatalf("metrics page:\n%s", body)
	}
}
