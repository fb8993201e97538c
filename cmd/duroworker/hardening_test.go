package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/internal/redistest"
	"github.com/duroworker/duroworker/internal/replay"
)

// envCLIMain makes the test binary run as the duroworker command, so that
// tests can check what a real process prints on its stderr.
const envCLIMain = "DUROWORKER_TEST_RUN_CLI"

func TestMain(m *testing.M) {
	if os.Getenv(envCLIMain) == "1" {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// runProcess runs the command line in a child process (this test binary as
// duroworker) and returns its exit status and outputs.
func runProcess(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), envCLIMain+"=1"), env...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code = cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		t.Fatalf("running duroworker %s: %v", strings.Join(args, " "), err)
	}
	t.Logf("duroworker %s (process): exit %d\n--- stdout\n%s--- stderr\n%s", strings.Join(args, " "), code, out.String(), errOut.String())
	return code, out.String(), errOut.String()
}

// runCLIIn is runCLI with a standard input.
func runCLIIn(t *testing.T, stdin io.Reader, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut syncBuffer
	root := newRootCommand(&out, &errOut)
	root.SetIn(stdin)
	root.SetArgs(args)
	code = execute(context.Background(), root, args, &errOut)
	t.Logf("duroworker %s: exit %d\n--- stdout\n%s--- stderr\n%s", strings.Join(args, " "), code, out.String(), errOut.String())
	return code, out.String(), errOut.String()
}

// TestRedisURLNeverShowsThePassword: malformed --redis and DUROWORKER_REDIS
// values are refused without printing the password, and a URL without a
// host is refused instead of dialing localhost:6379.
func TestRedisURLNeverShowsThePassword(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ url, want string }{
		{"app:S3CRET@127.0.0.1:7160", `invalid URL scheme "app"`},
		{"rediss:/user:S3CRET@127.0.0.1:7160", "no host"},
		{"redis:app:S3CRET@127.0.0.1:7160", "--redis redis:app:xxxxx@127.0.0.1:7160: no host"},
		{"redis://app:S3CRET@:7160/0", "no host"},
		{"redis://app:S3CRET@127.0.0.1:7160/0/1", "invalid URL path"},
		{"redis://app:S3%CRET@127.0.0.1:7160/0", "invalid URL escape"},
		{"redis://app:S3CRET@[::1/0", "not a valid URL"},
		{"redis://:S3CRET@127.0.0.1:port/0", "--redis redis://:xxxxx@127.0.0.1:port/0"},
		{"unix://app:S3CRET@", "no socket path"},
	} {
		for _, args := range [][]string{{"list", "--redis", c.url}, {"worker", "--redis", c.url}, {"bench", "drain", "--flush", "--redis", c.url}} {
			code, _, stderr := runCLI(t, args...)
			if code != exitUsage || !strings.Contains(stderr, c.want) || strings.Contains(stderr, "S3CRET") || strings.Contains(stderr, "S3%") ||
				strings.Contains(stderr, "cannot reach") {
				t.Errorf("%s %q: exit %d, stderr %q; want %q without the password and without dialing", args[0], c.url, code, stderr, c.want)
			}
		}
	}
}

// TestRedisURLFromEnvironmentNeverShowsThePassword: the same through
// DUROWORKER_REDIS, in a real process (also checks that go-redis prints no
// "pool.go" line of its own on stderr when Redis cannot be reached).
func TestRedisURLFromEnvironmentNeverShowsThePassword(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ url, want string }{
		{"redis:app:S3CRET@127.0.0.1:7160", "no host"},
		{"rediss:/user:S3CRET@127.0.0.1:7160", "no host"},
	} {
		code, _, stderr := runProcess(t, []string{envRedis + "=" + c.url}, "status", "x")
		if code != exitUsage || !strings.Contains(stderr, c.want) || strings.Contains(stderr, "S3CRET") {
			t.Errorf("%s=%q: exit %d, stderr %q; want %q without the password", envRedis, c.url, code, stderr, c.want)
		}
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	down := fmt.Sprintf("redis://app:S3CRET@127.0.0.1:%d/0", port)
	for _, cmd := range [][]string{{"list"}, {"worker", "--log-level", "debug"}} {
		code, _, stderr := runProcess(t, []string{envRedis + "=" + down}, cmd...)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		last := lines[len(lines)-1]
		if code != 1 || strings.Contains(stderr, "S3CRET") || strings.Contains(stderr, "pool.go") ||
			!strings.HasPrefix(last, "duroworker: cannot reach Redis at redis://app:xxxxx@") {
			t.Errorf("%s with Redis down: exit %d, stderr %q; want one error line, no go-redis line, no password", cmd[0], code, stderr)
		}
		if cmd[0] == "list" && len(lines) != 1 {
			t.Errorf("list with Redis down printed %d lines on stderr, want 1: %q", len(lines), stderr)
		}
		for _, l := range lines[:len(lines)-1] {
			if !strings.Contains(l, "component=go-redis") && !strings.Contains(l, "level=") {
				t.Errorf("worker with Redis down: stderr line %q is not a slog line", l)
			}
		}
	}
}

// hostile holds terminal escapes and bidi overrides.
const (
	hostileID      = "rtl-\u202egnp.exe"
	hostileName    = "evil\x1b[31mname\u2066"
	hostileInput   = "in\x1b]0;pwned\x07put"
	hostileCorrupt = "\x1b]0;corrupt\x07{not json"
	hostileReason  = "\u202ereason\u009b31m\x1b[2J"
)

// assertNoTerminalControls fails when out holds a raw escape, bell, C1
// control or bidi override.
func assertNoTerminalControls(t *testing.T, what, out string) {
	t.Helper()
	for _, bad := range []string{"\x1b", "\x07", "\u009b", "\u202e", "\u2066"} {
		if strings.Contains(out, bad) {
			t.Errorf("%s prints %q raw:\n%q", what, bad, out)
		}
	}
}

// TestHumanOutputEscapesTerminalControls: stored ids, names, payloads,
// reasons and corrupt events with terminal escapes and bidi overrides are
// printed escaped by every table and field list; JSON stays exact. A
// corrupt history event is shown raw and marked, and does not hide the
// others.
func TestHumanOutputEscapesTerminalControls(t *testing.T) {
	t.Parallel()
	e := miniEnv(t)
	ctx := context.Background()
	if err := e.client.Start(ctx, hostileID, "plain::orch", hostileInput); err != nil {
		t.Fatal(err)
	}
	// What a non-Go producer or a corrupted store may hold.
	rdb := e.rdb
	k := e.store.Keys()
	started, err := replay.EncodeEvent(replay.Event{ID: 1, Kind: replay.EventOrchestrationStarted, Name: hostileName, Version: "1.0.0", Input: hostileInput})
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(rdb.HSet(ctx, k.InstanceKey(hostileID), "name", hostileName, "exec", "1", "status", "Running",
		"cstatus", hostileInput, "cset", "1").Err())
	must(rdb.RPush(ctx, k.HistoryKey(hostileID, 1), started, hostileCorrupt).Err())
	must(rdb.XAdd(ctx, &redis.XAddArgs{Stream: k.DeadLettersKey(), Values: []any{"kind", "orchestration\x1b[5m", "instance", "dl\x1b]0;x\x07",
		"execution", "1", "reason", hostileReason, "attempts", "3", "max_attempts", "2", "time", "1767225600000"}}).Err())

	for _, args := range [][]string{{"list"}, {"status", hostileID}, {"info", hostileID}, {"history", hostileID}, {"dlq", "list"}} {
		out := e.ok(args...)
		assertNoTerminalControls(t, args[0], out)
		if !strings.Contains(out, `\x1b`) && !strings.Contains(out, `\u202e`) {
			t.Errorf("%s shows no escaped control:\n%s", args[0], out)
		}
	}
	out := e.ok("history", hostileID)
	mustMatch(t, "history", `(?m)^1\s+OrchestrationStarted\s+evil\\x1b\[31mname\\u2066\s+version=1\.0\.0 input=in\\x1b\]0;pwned\\x07put$`, out)
	mustMatch(t, "history", `(?m)^#2\s+\(corrupt\)\s+-\s+raw=\\x1b\]0;corrupt\\x07\{not json error=decoding history event`, out)
	mustMatch(t, "history", `(?m)^note: 1 event could not be decoded`, out)
	mustMatch(t, "status", `(?m)^Instance:\s+rtl-\\u202egnp\.exe$`, e.ok("status", hostileID))

	var hist struct {
		Events        []json.RawMessage `json:"events"`
		CorruptEvents int               `json:"corrupt_events"`
	}
	e.json(&hist, "history", hostileID)
	if len(hist.Events) != 2 || hist.CorruptEvents != 1 {
		t.Fatalf("history -o json: %+v", hist)
	}
	var first replay.Event
	var second jsonCorruptEvent
	if err := json.Unmarshal(hist.Events[0], &first); err != nil || first.Name != hostileName || first.Input != hostileInput {
		t.Errorf("history -o json event 1: %+v %v", first, err)
	}
	if err := json.Unmarshal(hist.Events[1], &second); err != nil || !second.Corrupt || second.Raw != hostileCorrupt || second.Error == "" {
		t.Errorf("history -o json event 2: %+v %v", second, err)
	}
	var dl struct {
		DeadLetters []jsonDeadLetter `json:"dead_letters"`
	}
	e.json(&dl, "dlq", "list")
	if len(dl.DeadLetters) != 1 || dl.DeadLetters[0].Reason != hostileReason {
		t.Errorf("dlq list -o json changes the stored reason: %+v", dl)
	}

	// Errors that quote stored or given text are escaped too.
	code, _, stderr := e.cli("wait", hostileID, "--timeout", "10ms")
	if code != exitTimedOut || strings.Contains(stderr, "\u202e") || !strings.Contains(stderr, `\u202e`) {
		t.Errorf("wait error: exit %d, %q", code, stderr)
	}
	// Names with controls are refused before anything is written.
	e.failsWith(exitUsage, "control character U+001B", "start", "evil\x1b]0;x\x07", "in")
	e.failsWith(exitUsage, "bidirectional text control U+202E", "start", "a\u202eb", "in")
}

// TestHistoryShowsACorruptEventOnARealRedis: the same corrupt-event
// display on a real redis-server.
func TestHistoryShowsACorruptEventOnARealRedis(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	e := newOpsEnv(t, srv.URL(), rdb)
	ctx := context.Background()
	if err := e.client.Start(ctx, "c-1", "plain::orch", "x"); err != nil {
		t.Fatal(err)
	}
	k := e.store.Keys()
	started, _ := replay.EncodeEvent(replay.Event{ID: 1, Kind: replay.EventOrchestrationStarted, Name: "plain::orch", Version: "1.0.0", Input: "x"})
	if err := rdb.HSet(ctx, k.InstanceKey("c-1"), "exec", "1", "status", "Running").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.RPush(ctx, k.HistoryKey("c-1", 1), started, `{"kind":"NoSuchKind","id":2}`).Err(); err != nil {
		t.Fatal(err)
	}
	out := e.ok("history", "c-1")
	mustMatch(t, "history", `(?m)^1\s+OrchestrationStarted\s+plain::orch\s+version=1\.0\.0 input=x$`, out)
	mustMatch(t, "history", `(?m)^#2\s+\(corrupt\)\s+-\s+raw=\{"kind":"NoSuchKind","id":2\}`, out)
}

// TestDeadLetterIDsAreChecked: a malformed dead-letter id gets a clear
// error, not Redis's "Invalid stream ID".
func TestDeadLetterIDsAreChecked(t *testing.T) {
	t.Parallel()
	e := miniEnv(t)
	for _, args := range [][]string{{"dlq", "requeue", "x"}, {"dlq", "drop", "1-0-0"}, {"dlq", "drop", "1767225600000-x"}, {"dlq", "list", "--after", "yesterday"}} {
		code, _, stderr := e.cli(args...)
		if code != exitUsage || !strings.Contains(stderr, "is not a dead-letter id: want MILLISECONDS-SEQUENCE") || strings.Contains(stderr, "ERR") {
			t.Errorf("%s: exit %d, stderr %q", strings.Join(args, " "), code, stderr)
		}
	}
}

// countingReader is an endless stream of 'a' that counts what was read.
type countingReader struct{ n int64 }

func (r *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	r.n += int64(len(p))
	return len(p), nil
}

// TestOversizedStdinSaysMoreThanTheLimit: a 600 MB input on standard
// input is refused as "more than N bytes" without reading all of it.
func TestOversizedStdinSaysMoreThanTheLimit(t *testing.T) {
	t.Parallel()
	e := miniEnv(t)
	in := &countingReader{}
	code, _, stderr := runCLIIn(t, io.LimitReader(in, 600<<20), "start", "n", "-", "--redis", e.url, "--prefix", e.prefix)
	want := fmt.Sprintf("more than %d bytes", client.MaxPayloadBytes)
	if code != exitUsage || !strings.Contains(stderr, want) || strings.Contains(stderr, fmt.Sprint(client.MaxPayloadBytes+1)) {
		t.Errorf("oversized stdin: exit %d, stderr %q; want %q", code, stderr, want)
	}
	if in.n > 2*client.MaxPayloadBytes {
		t.Errorf("read %d bytes of standard input, want about the limit", in.n)
	}
	// Exactly the limit, with a trailing newline, is accepted.
	code, _, stderr = runCLIIn(t, strings.NewReader(strings.Repeat("a", client.MaxPayloadBytes)+"\n"), "start", "n", "-", "--id", "max-1", "--redis", e.url, "--prefix", e.prefix)
	if code != 0 {
		t.Errorf("payload of exactly the limit: exit %d, %q", code, stderr)
	}
}

// TestEvictingRedisIsRefused: on a real redis-server with maxmemory-policy
// allkeys-lru, `duroworker worker` refuses to start unless
// --allow-evicting-redis, and management commands warn.
func TestEvictingRedisIsRefused(t *testing.T) {
	t.Parallel()
	srv := redistest.StartWith(t, redistest.Config{Args: []string{"--maxmemory", "100mb", "--maxmemory-policy", "allkeys-lru"}})
	e := newOpsEnv(t, srv.URL(), srv.Client(t))
	code, _, stderr := e.cli("worker")
	if code != 1 || !strings.Contains(stderr, "maxmemory-policy is allkeys-lru") || !strings.Contains(stderr, "--allow-evicting-redis overrides this, unsafely") {
		t.Errorf("worker on allkeys-lru: exit %d, stderr %q", code, stderr)
	}
	stop := e.startWorker("--allow-evicting-redis")
	out := e.ok("start", helloName, "lru", "--wait", "--timeout", "30s")
	mustMatch(t, "start on allkeys-lru", `(?m)^Output:\s+Hello, lru!$`, out)
	code, stderr = stop()
	if code != 0 || !strings.Contains(stderr, "Redis may evict keys and AllowEvictingRedis is set") {
		t.Errorf("worker --allow-evicting-redis: exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = e.cli("list")
	if code != 0 || !strings.Contains(stderr, "duroworker: warning: redis may evict keys") {
		t.Errorf("list on allkeys-lru: exit %d, stderr %q; want a warning", code, stderr)
	}
}
