package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/duroworker/duroworker/cmd/duroworker/internal/textsafe"
)

// readyPingTimeout bounds the Redis PING of one /readyz request. Probes
// should allow a little more (the Kubernetes manifests use timeoutSeconds 3).
const readyPingTimeout = time.Second

// readiness decides what /readyz answers: ready when Redis answers PING
// within readyPingTimeout and the worker node advertised itself within
// maxAge, and not ready at all once the node is draining.
type readiness struct {
	ping           func(context.Context) error // Redis PING
	lastAdvertised func() time.Time            // (*worker.Worker).LastAdvertised
	maxAge         time.Duration               // how old the last advertisement may be
	now            func() time.Time            // time.Now; tests replace it
	draining       atomic.Bool
}

// Drain marks the node as stopping: /readyz answers 503 from now on.
func (r *readiness) Drain() { r.draining.Store(true) }

// check returns nil when the node is ready, or why it is not.
func (r *readiness) check(ctx context.Context) error {
	if r == nil {
		return errors.New("worker not started")
	}
	if r.draining.Load() {
		return errors.New("worker is draining (shutting down)")
	}
	pctx, cancel := context.WithTimeout(ctx, readyPingTimeout)
	defer cancel()
	if err := r.ping(pctx); err != nil {
		return fmt.Errorf("redis PING failed: %v", err)
	}
	last := r.lastAdvertised()
	if last.IsZero() {
		return errors.New("worker node has not advertised itself yet")
	}
	now := time.Now
	if r.now != nil {
		now = r.now
	}
	if age := now().Sub(last); age > r.maxAge {
		return fmt.Errorf("worker node last advertised itself %s ago (limit %s)", age.Round(time.Millisecond), r.maxAge)
	}
	return nil
}

// healthz answers 200 "ok" while the process serves HTTP at all: a liveness
// probe, which must not depend on Redis (a Redis outage is no reason to
// restart every worker).
func healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = fmt.Fprintln(w, "ok")
}

// readyzHandler answers 200 "ok" when r (loaded at each request; nil before
// the worker started) says the node is ready, and 503 with a one-line reason
// otherwise.
func readyzHandler(r *atomic.Pointer[readiness]) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err := r.Load().check(req.Context()); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintln(w, "not ready: "+reasonLine(err.Error()))
			return
		}
		_, _ = fmt.Fprintln(w, "ok")
	}
}

// reasonLine keeps a reason on one line: control characters escaped,
// whitespace runs collapsed.
func reasonLine(s string) string {
	return strings.Join(strings.Fields(textsafe.Escape(s)), " ")
}
