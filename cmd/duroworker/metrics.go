package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// metricsServer serves the worker's OpenTelemetry metrics, with the Go
// runtime and process metrics, in the Prometheus text format on /metrics,
// and the probes /healthz and /readyz.
type metricsServer struct {
	Provider metric.MeterProvider
	Addr     string // the address actually bound (useful with port 0)
	srv      *http.Server
	sdk      *sdkmetric.MeterProvider
	ready    atomic.Pointer[readiness] // nil until the worker started
}

// startMetrics binds addr and serves /metrics from a fresh registry fed by
// an OpenTelemetry meter provider, which the worker then uses, and by the Go
// runtime and process collectors (go_*, process_*; the process collector
// reports nothing on platforms without /proc). /readyz answers 503 until
// SetReadiness.
func startMetrics(addr string) (*metricsServer, error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, fmt.Errorf("metrics: go collector: %w", err)
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, fmt.Errorf("metrics: process collector: %w", err)
	}
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("metrics exporter: %w", err)
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr %s: %w", addr, err)
	}
	m := &metricsServer{Provider: provider, Addr: ln.Addr().String(), sdk: provider}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", healthz)
	mux.Handle("GET /readyz", readyzHandler(&m.ready))
	m.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := m.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Println("metrics server stopped:", err)
		}
	}()
	return m, nil
}

// SetReadiness makes /readyz answer from r.
func (m *metricsServer) SetReadiness(r *readiness) { m.ready.Store(r) }

// Close stops the server and the provider.
func (m *metricsServer) Close(ctx context.Context) error {
	return errors.Join(m.srv.Shutdown(ctx), m.sdk.Shutdown(ctx))
}
