package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// metricsServer serves the worker's OpenTelemetry metrics in the Prometheus
// text format on /metrics.
type metricsServer struct {
	Provider metric.MeterProvider
	Addr     string // the address actually bound (useful with port 0)
	srv      *http.Server
	sdk      *sdkmetric.MeterProvider
}

// startMetrics binds addr and serves /metrics from a fresh registry fed by
// an OpenTelemetry meter provider, which the worker then uses.
func startMetrics(addr string) (*metricsServer, error) {
	reg := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("metrics exporter: %w", err)
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	m := &metricsServer{Provider: provider, Addr: ln.Addr().String(), sdk: provider,
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}}
	go func() {
		if err := m.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Println("metrics server stopped:", err)
		}
	}()
	return m, nil
}

// Close stops the server and the provider.
func (m *metricsServer) Close(ctx context.Context) error {
	return errors.Join(m.srv.Shutdown(ctx), m.sdk.Shutdown(ctx))
}
