package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/internal/redistest"
	"github.com/duroworker/duroworker/queue"
)

// TestDashboardListenNeedsAuth refuses a non-loopback address without
// credentials, before connecting to Redis.
func TestDashboardListenNeedsAuth(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:0": true, "[::1]:8088": true, "localhost:8088": true,
		"0.0.0.0:8088": false, ":8088": false, "10.1.2.3:8088": false, "[::]:8088": false, "example.com:80": false,
	} {
		err := checkListen(addr, false)
		if (err == nil) != ok {
			t.Errorf("checkListen(%q, no auth) = %v", addr, err)
		}
		if err := checkListen(addr, true); err != nil {
			t.Errorf("checkListen(%q, auth) = %v", addr, err)
		}
	}
	t.Setenv(envDashToken, "")
	code, _, stderr := runCLI(t, "dashboard", "--listen", "0.0.0.0:0", "--redis", "redis://127.0.0.1:1/0")
	if code != exitUsage || !strings.Contains(stderr, "refusing to serve the dashboard without credentials") {
		t.Errorf("dashboard on 0.0.0.0 without auth: %d %q", code, stderr)
	}
	bad := filepath.Join(t.TempDir(), "basic")
	if err := os.WriteFile(bad, []byte("nocolon\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCLI(t, "dashboard", "--basic-auth-file", bad); code != exitUsage || !strings.Contains(stderr, "want user:password") {
		t.Errorf("bad basic auth file: %d %q", code, stderr)
	}
}

// TestDashboardCommand serves two namespaces of a miniredis with a token and
// reads them.
func TestDashboardCommand(t *testing.T) {
	m, rdb := redistest.StartMini(t)
	for _, p := range []string{"one", "two"} {
		c := client.New(queue.New(rdb, queue.Options{Prefix: p}))
		if err := c.Start(context.Background(), "in-"+p, "Nobody", ""); err != nil {
			t.Fatal(err)
		}
		_ = c.Close()
	}
	t.Setenv(envDashToken, "tok")
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"dashboard", "--listen", "127.0.0.1:0", "--redis", "redis://" + m.Addr() + "/0", "--prefix", "one, two"}, &out, &errOut)
	}()
	urlRE := regexp.MustCompile(`dashboard: serving (http://\S+) \(read-only\)`)
	url := waitPrinted(t, &out, &errOut, urlRE, 30*time.Second)
	get := func(path, auth string) (int, string) {
		req, _ := http.NewRequest("GET", url+strings.TrimPrefix(path, "/"), nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/api/overview", ""); code != 401 {
		t.Errorf("without the token: %d", code)
	}
	for _, p := range []string{"one", "two"} {
		if code, body := get("/api/instances?ns="+p, "Bearer tok"); code != 200 || !strings.Contains(body, "in-"+p) {
			t.Errorf("namespace %s: %d %s", p, code, body)
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("dashboard exited %d: %s", code, errOut.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("dashboard did not stop")
	}
}

// TestDevServeDashboard serves the dashboard from the start of the dev run.
func TestDevServeDashboard(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- runDev(ctx, devOptions{Store: storeMiniredis, Timeout: time.Minute, Serve: true, Port: 0}, &out, &errOut)
	}()
	urlRE := regexp.MustCompile(`dashboard: (http://127\.0\.0\.1:\d+/) \(actions on\)`)
	url := waitPrinted(t, &out, &errOut, urlRE, time.Minute)
	// The rolling upgrade's instance shows its executions' versions.
	// (the scenarios have ended when the nodes are served)
	waitPrinted(t, &out, &errOut, regexp.MustCompile(`(serving: 3 worker nodes)`), time.Minute)
	resp, err := http.Get(url + "api/instances/monitor-1?ns=dev")
	if err != nil {
		t.Fatal(err)
	}
	var inst struct {
		Executions []struct {
			ExecutionID int64
			Version     string `json:"version"`
		} `json:"executions"`
	}
	err = json.NewDecoder(resp.Body).Decode(&inst)
	resp.Body.Close()
	var versions []string
	for _, x := range inst.Executions {
		versions = append(versions, x.Version)
	}
	// newest first: the upgrade happened at a continue-as-new
	if err != nil || strings.Join(versions, " ") != "1.0.2 1.0.2 1.0.0" {
		t.Errorf("monitor-1 executions: %v (%v)", versions, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("dev --serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("dev --serve did not stop")
	}
}
