package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duroworker/duroworker/internal/redistest"
)

// get returns the status and body of GET url.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

// expectProbe requires GET url to answer status with a body containing
// want.
func expectProbe(t *testing.T, url string, status int, want string) {
	t.Helper()
	code, body := get(t, url)
	if code != status || !strings.Contains(body, want) {
		t.Errorf("GET %s: %d %q; want %d and %q", url, code, body, status, want)
	}
}

// waitProbe polls url until it answers status with a body containing want.
func waitProbe(t *testing.T, url string, status int, want string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		code, body := 0, ""
		c := &http.Client{Timeout: 5 * time.Second}
		if resp, err := c.Get(url); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			code, body = resp.StatusCode, string(b)
		}
		if code == status && strings.Contains(body, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: still %d %q after %s; want %d and %q", url, code, body, within, status, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestReadyzReasons drives /readyz through each reason for not being ready
// with a fake Redis and a fake advertisement clock; /healthz answers ok
// throughout.
func TestReadyzReasons(t *testing.T) {
	t.Parallel()
	m, err := startMetrics("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	healthURL, readyURL := "http://"+m.Addr+"/healthz", "http://"+m.Addr+"/readyz"

	expectProbe(t, healthURL, http.StatusOK, "ok\n")
	expectProbe(t, readyURL, http.StatusServiceUnavailable, "not ready: worker not started\n")

	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	var pingErr atomic.Pointer[error]
	var slow atomic.Bool
	var last atomic.Int64 // Unix ns, 0: never advertised
	r := &readiness{
		ping: func(ctx context.Context) error {
			if slow.Load() {
				<-ctx.Done() // a Redis that does not answer
				return ctx.Err()
			}
			if e := pingErr.Load(); e != nil {
				return *e
			}
			return nil
		},
		lastAdvertised: func() time.Time {
			if ns := last.Load(); ns != 0 {
				return time.Unix(0, ns)
			}
			return time.Time{}
		},
		maxAge: 15 * time.Second,
		now:    func() time.Time { return now },
	}
	m.SetReadiness(r)
	expectProbe(t, readyURL, http.StatusServiceUnavailable, "not ready: worker node has not advertised itself yet\n")

	last.Store(now.Add(-4 * time.Second).UnixNano())
	expectProbe(t, readyURL, http.StatusOK, "ok\n")

	last.Store(now.Add(-20 * time.Second).UnixNano())
	expectProbe(t, readyURL, http.StatusServiceUnavailable, "not ready: worker node last advertised itself 20s ago (limit 15s)\n")
	last.Store(now.UnixNano())

	down := errors.New("dial tcp 127.0.0.1:6379: connect: connection refused\nsecond line")
	pingErr.Store(&down)
	code, body := get(t, readyURL)
	if code != http.StatusServiceUnavailable || body != "not ready: redis PING failed: dial tcp 127.0.0.1:6379: connect: connection refused\\x0asecond line\n" {
		t.Errorf("/readyz with Redis down: %d %q", code, body)
	}
	pingErr.Store(nil)

	slow.Store(true)
	began := time.Now()
	expectProbe(t, readyURL, http.StatusServiceUnavailable, "not ready: redis PING failed: context deadline exceeded")
	if took := time.Since(began); took > readyPingTimeout+2*time.Second {
		t.Errorf("/readyz with a Redis that does not answer took %s", took)
	}
	slow.Store(false)
	expectProbe(t, readyURL, http.StatusOK, "ok\n")

	r.Drain()
	expectProbe(t, readyURL, http.StatusServiceUnavailable, "not ready: worker is draining (shutting down)\n")
	expectProbe(t, healthURL, http.StatusOK, "ok\n")
}

// TestMetricsEndpointServesRuntimeAndProcessMetrics checks the Go runtime
// collector everywhere and the process collector where it reports (Linux).
func TestMetricsEndpointServesRuntimeAndProcessMetrics(t *testing.T) {
	t.Parallel()
	m, err := startMetrics("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	code, body := get(t, "http://"+m.Addr+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	want := []string{"\ngo_goroutines ", "\ngo_memstats_heap_alloc_bytes ", "\ngo_info{version=\"" + runtime.Version() + "\"} 1"}
	if runtime.GOOS == "linux" {
		want = append(want, "\nprocess_resident_memory_bytes ", "\nprocess_open_fds ", "\nprocess_cpu_seconds_total ", "\nprocess_start_time_seconds ")
	} else {
		t.Logf("%s: the process collector reports nothing here, process_* not checked", runtime.GOOS)
	}
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("/metrics lacks %q", strings.TrimPrefix(w, "\n"))
		}
	}
}

// TestWorkerProbesFollowRedis runs `duroworker worker --metrics-addr
// --log-format json` on a real redis-server: /readyz turns 200 once the node
// advertised itself, 503 while Redis is down (/healthz stays 200), and 200
// again after Redis is back; the logs are JSON lines.
func TestWorkerProbesFollowRedis(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	e := newOpsEnv(t, s.URL(), s.Client(t))
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	stop := e.startWorker("--node-id", "probe-node", "--metrics-addr", fmt.Sprintf("127.0.0.1:%d", port), "--log-format", "json")

	waitProbe(t, base+"/healthz", http.StatusOK, "ok\n", 20*time.Second)
	waitProbe(t, base+"/readyz", http.StatusOK, "ok\n", 20*time.Second)

	s.Stop(t)
	waitProbe(t, base+"/readyz", http.StatusServiceUnavailable, "not ready: redis PING failed", 10*time.Second)
	expectProbe(t, base+"/healthz", http.StatusOK, "ok\n")

	s.Restart(t)
	waitProbe(t, base+"/readyz", http.StatusOK, "ok\n", 20*time.Second)

	code, stderr := stop()
	if code != 0 {
		t.Errorf("worker exited %d", code)
	}
	msgs := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		var rec struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
			Node  string `json:"node"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("--log-format json: not a JSON line: %q (%v)", line, err)
			continue
		}
		msgs[rec.Msg] = true
	}
	for _, want := range []string{"serving metrics", "worker started", "shutting down", "worker stopped"} {
		if !msgs[want] {
			t.Errorf("--log-format json: no line with msg %q", want)
		}
	}
}

func TestLogFormat(t *testing.T) {
	t.Parallel()
	var buf strings.Builder
	l, err := newLogger(&buf, "json", 0)
	if err != nil {
		t.Fatal(err)
	}
	l.Info("hello", "node", "n1")
	l.Debug("hidden")
	var rec map[string]any
	if err := json.Unmarshal([]byte(buf.String()), &rec); err != nil || rec["msg"] != "hello" || rec["node"] != "n1" || rec["level"] != "INFO" {
		t.Errorf("json logger wrote %q (%v)", buf.String(), err)
	}
	buf.Reset()
	if l, err = newLogger(&buf, "text", 0); err != nil {
		t.Fatal(err)
	}
	l.Info("hello", "node", "n1")
	if !strings.Contains(buf.String(), "level=INFO msg=hello node=n1\n") {
		t.Errorf("text logger wrote %q", buf.String())
	}
	if _, err := newLogger(&buf, "JSON", 0); err == nil || err.Error() != `--log-format "JSON": want text or json` {
		t.Errorf("newLogger(JSON): %v", err)
	}
	for _, cmd := range []string{"worker", "dev"} {
		code, _, stderr := runCLI(t, cmd, "--log-format", "xml")
		if code != exitUsage || !strings.Contains(stderr, `duroworker: --log-format "xml": want text or json`) {
			t.Errorf("%s --log-format xml: exit %d, stderr %q", cmd, code, stderr)
		}
	}
}
