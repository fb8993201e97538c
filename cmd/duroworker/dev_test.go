package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duroworker/duroworker/engine"
)

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// runCLI runs the command line in-process and returns its exit status and
// outputs.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut syncBuffer
	code = run(context.Background(), args, &out, &errOut)
	t.Logf("duroworker %s: exit %d\n--- stdout\n%s--- stderr\n%s", strings.Join(args, " "), code, out.String(), errOut.String())
	return code, out.String(), errOut.String()
}

// scenarioRows are the summary rows every successful dev run prints.
var scenarioRows = []struct{ scenario, instance string }{
	{"hello", "hello-1"},
	{"fan-out", "fan-out-1"},
	{"approval", "approval-1"},
	{"approval", "approval-2"},
	{"rolling-upgrade", "monitor-1"},
	{"rolling-upgrade", "monitor-2"},
	{"pinning", "pinned-1"},
}

func assertAllPassed(t *testing.T, code int, stdout string) {
	t.Helper()
	if code != 0 {
		t.Fatalf("dev exited %d", code)
	}
	if !strings.Contains(stdout, "PASS: all 7 checks reached their expected state") {
		t.Fatalf("summary does not say every check passed")
	}
	for _, r := range scenarioRows {
		row := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(r.scenario) + ` +` + regexp.QuoteMeta(r.instance) + ` .* ok$`)
		if !row.MatchString(stdout) {
			t.Errorf("no passing summary row for %s / %s", r.scenario, r.instance)
		}
	}
	if strings.Contains(stdout, "FAIL") {
		t.Errorf("output mentions FAIL")
	}
	// The rolling upgrade switched versions at a continue-as-new.
	if !regexp.MustCompile(`monitor-1: execution \d started on 1\.0\.2 \(execution \d ran 1\.0\.0\): upgraded at continue-as-new`).MatchString(stdout) {
		t.Errorf("no upgrade at continue-as-new in the progress lines")
	}
}

func TestDevMiniredis(t *testing.T) {
	t.Parallel()
	code, stdout, _ := runCLI(t, "dev", "--store", "miniredis")
	if !strings.Contains(stdout, "store: in-process miniredis") {
		t.Errorf("store line missing")
	}
	assertAllPassed(t, code, stdout)
}

func TestDevRedisServer(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("-short: skipping the run on a real redis-server")
	}
	if _, err := exec.LookPath(redisServerBinary); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-server is required in CI: %v", err)
		}
		t.Skipf("redis-server not on PATH: %v", err)
	}
	code, stdout, _ := runCLI(t, "dev", "--store", "redis-server")
	m := regexp.MustCompile(`store: redis-server \S+ \(child pid (\d+)\) at 127\.0\.0\.1:\d+`).FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("no redis-server store line")
	}
	assertAllPassed(t, code, stdout)
	// The child was stopped (and reaped).
	pid, _ := strconv.Atoi(m[1])
	if alive, err := processAlive(pid); alive {
		t.Errorf("redis-server pid %d still exists after the run (%v)", pid, err)
	}
	if !strings.Contains(stdout, "stopped, its directory removed") {
		t.Errorf("no store stop line")
	}
}

func TestDevTimeout(t *testing.T) {
	t.Parallel()
	began := time.Now()
	code, stdout, stderr := runCLI(t, "dev", "--store", "miniredis", "--timeout", "300ms")
	if code != exitTimedOut {
		t.Fatalf("a run cut short by --timeout exited %d, want %d", code, exitTimedOut)
	}
	if !strings.Contains(stderr, "duroworker: timed out after 300ms (--timeout)") {
		t.Errorf("stderr does not explain the timeout")
	}
	if !strings.Contains(stdout, "FAIL:") {
		t.Errorf("summary does not report failures")
	}
	if d := time.Since(began); d > 10*time.Second {
		t.Errorf("a 300ms run took %s", d)
	}
}

func TestDevInterrupted(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() { done <- runDev(ctx, devOptions{Store: storeMiniredis, Timeout: time.Minute}, &out, &errOut) }()
	time.Sleep(200 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("interrupted run returned nil; stdout:\n%s", out.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("run did not stop after cancellation; stdout:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "shut down gracefully") {
		t.Errorf("nodes not shut down:\n%s", out.String())
	}
}

func TestDevBadFlags(t *testing.T) {
	t.Parallel()
	code, _, stderr := runCLI(t, "dev", "--store", "etcd")
	if code != exitUsage || !strings.Contains(stderr, `--store "etcd"`) {
		t.Errorf("bad --store: exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = runCLI(t, "dev", "--timeout", "0s")
	if code != exitUsage || !strings.Contains(stderr, "--timeout must be positive") {
		t.Errorf("zero --timeout: exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = runCLI(t, "nosuch")
	if code != exitUsage || !strings.Contains(stderr, "unknown command") {
		t.Errorf("unknown command: exit %d, stderr %q", code, stderr)
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	code, stdout, _ := runCLI(t, "version")
	if code != 0 || !strings.HasPrefix(stdout, "duroworker engine "+engine.Version+"\nmodule:  ") || !strings.Contains(stdout, "\ngo:      go1.") {
		t.Errorf("version: exit %d, stdout %q", code, stdout)
	}
	code, stdout, _ = runCLI(t, "--version")
	if code != 0 || stdout != "duroworker engine "+engine.Version+"\n" {
		t.Errorf("--version: exit %d, stdout %q", code, stdout)
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	code, stdout, _ := runCLI(t, "--help")
	for _, want := range []string{"duroworker", "dev", "version"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("--help lacks %q", want)
		}
	}
	if code != 0 {
		t.Errorf("--help exited %d", code)
	}
	code, stdout, _ = runCLI(t, "dev", "--help")
	for _, want := range []string{"--store", "--timeout", "--verbose", "rolling-upgrade"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("dev --help lacks %q", want)
		}
	}
	if code != 0 {
		t.Errorf("dev --help exited %d", code)
	}
}

// TestDevServe keeps the store and workers up after the scenarios and lets
// another command, pointed at the printed URL, run an orchestration on them.
func TestDevServe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- runDev(ctx, devOptions{Store: storeMiniredis, Timeout: time.Minute, Serve: true}, &out, &errOut)
	}()
	urlRE := regexp.MustCompile(`serving: 3 worker nodes on (redis://\S+),`)
	url := waitPrinted(t, &out, &errOut, urlRE, time.Minute)
	code, stdout, stderr := runCLI(t, "start", "examples::orchestration::hello", "served", "--id", "from-cli",
		"--redis", url, "--prefix", "dev", "--wait", "--timeout", "30s")
	if code != 0 || !strings.Contains(stdout, "Completed") {
		t.Fatalf("start against dev --serve: code %d\n%s\n%s", code, stdout, stderr)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("dev --serve ended with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("dev --serve did not stop after cancellation")
	}
	if !strings.Contains(out.String(), "serve nodes stopped") {
		t.Fatalf("no clean stop:\n%s", out.String())
	}
}

// waitPrinted waits until out matches re and returns its first submatch;
// it fails the test with both outputs after within.
func waitPrinted(t *testing.T, out, errOut *syncBuffer, re *regexp.Regexp, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			return m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("never printed %s:\n%s\n%s", re, out.String(), errOut.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
