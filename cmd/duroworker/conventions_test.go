package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/internal/redistest"
)

// section returns the lines of help text under the heading title, up to
// the next blank line.
func section(help, title string) string {
	i := strings.Index(help, "\n"+title+"\n")
	if i < 0 {
		return ""
	}
	rest := help[i+len(title)+2:]
	if j := strings.Index(rest, "\n\n"); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

// TestConventionsHelpShowsPersistentFlagsAndGroups: duroworker --help
// lists the commands in the Run, Instances and Operations groups and the
// root's persistent flags, each naming its environment variable; the
// deprecated --json and a -v shorthand of --version are not shown.
func TestConventionsHelpShowsPersistentFlagsAndGroups(t *testing.T) {
	t.Parallel()
	code, help, _ := runCLI(t, "--help")
	if code != exitOK {
		t.Fatalf("--help: exit %d", code)
	}
	for title, cmds := range map[string][]string{
		"Run:":        {"dev", "worker", "bench"},
		"Instances:":  {"start", "status", "info", "list", "history", "raise", "enqueue", "cancel", "wait", "delete", "prune"},
		"Operations:": {"dashboard", "dlq", "sessions", "queues", "metrics", "version"},
	} {
		sec := section(help, title)
		if sec == "" {
			t.Errorf("--help has no %q group:\n%s", title, help)
			continue
		}
		for _, c := range cmds {
			if !regexp.MustCompile(`(?m)^  ` + c + `\s`).MatchString(sec) {
				t.Errorf("--help: %s is not in the %q group:\n%s", c, title, sec)
			}
		}
	}
	flags := section(help, "Flags:")
	for _, want := range []string{
		"--redis string", "(env DUROWORKER_REDIS)", "--prefix string", "(env DUROWORKER_PREFIX)",
		"--tls-ca string", "--tls-cert string", "--tls-key string", "--tls-server-name string", "(env DUROWORKER_TLS_SERVER_NAME)",
		"-o, --output format", "(env DUROWORKER_OUTPUT)", "--version",
	} {
		if !strings.Contains(flags, want) {
			t.Errorf("--help flags lack %q:\n%s", want, flags)
		}
	}
	if strings.Contains(flags, "--json") || strings.Contains(flags, "-v, --version") {
		t.Errorf("--help shows --json or a -v shorthand:\n%s", flags)
	}

	// A command shows the root's flags as global flags, and its own flags'
	// variables.
	for cmd, wants := range map[string][]string{
		"start":  {"--require-served", "(env DUROWORKER_START_REQUIRE_SERVED)", "(env DUROWORKER_START_ID)"},
		"list":   {"(env DUROWORKER_LIST_LIMIT)", "(env DUROWORKER_LIST_STATUS)"},
		"worker": {"(env DUROWORKER_NODE_ID)", "(env DUROWORKER_METRICS_ADDR)", "(env DUROWORKER_LOG_LEVEL)"},
		"bench":  {"--out string", "(env DUROWORKER_BENCH_OUT)", "(env DUROWORKER_BENCH_REDIS)"},
	} {
		_, out, _ := runCLI(t, cmd, "--help")
		global := section(out, "Global Flags:")
		if cmd != "bench" && (!strings.Contains(global, "--redis string") || !strings.Contains(global, "-o, --output format")) {
			t.Errorf("%s --help: the root's flags are not listed as global flags:\n%s", cmd, out)
		}
		for _, want := range wants {
			if !strings.Contains(out, want) {
				t.Errorf("%s --help lacks %q", cmd, want)
			}
		}
		if strings.Contains(out, "--json") {
			t.Errorf("%s --help shows the deprecated --json", cmd)
		}
	}
}

// TestConventionsVersionHasNoShorthand: the root's -v is gone (dev -v is
// --verbose); --version and version remain.
func TestConventionsVersionHasNoShorthand(t *testing.T) {
	t.Parallel()
	code, stdout, stderr := runCLI(t, "-v")
	if code != exitUsage || stdout != "" || !strings.Contains(stderr, "unknown shorthand flag: 'v'") {
		t.Errorf("-v: exit %d, %q %q; want a usage error", code, stdout, stderr)
	}
	if code, stdout, _ := runCLI(t, "--version"); code != exitOK || !strings.HasPrefix(stdout, "duroworker engine ") {
		t.Errorf("--version: exit %d, %q", code, stdout)
	}
	// version follows -o like the commands that print results
	code, stdout, _ = runCLI(t, "version", "-o", "json")
	var v versionInfo
	if err := json.Unmarshal([]byte(stdout), &v); code != exitOK || err != nil || v.Engine != engine.Version {
		t.Errorf("version -o json: exit %d, %q (%v)", code, stdout, err)
	}
	if _, out, _ := runCLI(t, "dev", "--help"); !strings.Contains(out, "-v, --verbose") {
		t.Errorf("dev --help lacks -v, --verbose:\n%s", out)
	}
}

// TestConventionsEveryFlagHasAVariable: the variables are derived from the
// flags (DUROWORKER_<FLAG> for the root and worker, DUROWORKER_<COMMAND>_
// <FLAG> for the others), unique, and all listed in docs/cli.md.
func TestConventionsEveryFlagHasAVariable(t *testing.T) {
	t.Parallel()
	root := newRootCommand(&syncBuffer{}, &syncBuffer{})
	vars := envVariables(root)
	got := map[string]string{}
	for _, v := range vars {
		if prev, dup := got[v[0]]; dup {
			t.Errorf("%s names two flags: %s and %s %s", v[0], prev, v[2], v[1])
		}
		got[v[0]] = v[2] + " " + v[1]
	}
	for name, flag := range map[string]string{
		"DUROWORKER_REDIS":                "duroworker --redis",
		"DUROWORKER_PREFIX":               "duroworker --prefix",
		"DUROWORKER_TLS_CA":               "duroworker --tls-ca",
		"DUROWORKER_OUTPUT":               "duroworker --output",
		"DUROWORKER_NODE_ID":              "duroworker worker --node-id",
		"DUROWORKER_METRICS_ADDR":         "duroworker worker --metrics-addr",
		"DUROWORKER_ALLOW_EVICTING_REDIS": "duroworker worker --allow-evicting-redis",
		"DUROWORKER_START_ID":             "duroworker start --id",
		"DUROWORKER_START_VERSION":        "duroworker start --version",
		"DUROWORKER_DLQ_LIST_LIMIT":       "duroworker dlq list --limit",
		"DUROWORKER_DEV_STORE":            "duroworker dev --store",
		"DUROWORKER_BENCH_OUT":            "duroworker bench --out",
		"DUROWORKER_BENCH_DRAIN_N":        "duroworker bench drain --n",
	} {
		if got[name] != flag {
			t.Errorf("%s is %q, want %q", name, got[name], flag)
		}
	}
	for _, none := range []string{"DUROWORKER_HELP", "DUROWORKER_VERSION", "DUROWORKER_JSON", "DUROWORKER_BENCH_JSON"} {
		if _, ok := got[none]; ok {
			t.Errorf("%s exists", none)
		}
	}
	doc, err := os.ReadFile("../../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vars {
		if !strings.Contains(string(doc), "`"+v[0]+"`") {
			t.Errorf("docs/cli.md does not list %s (%s %s)", v[0], v[2], v[1])
		}
	}
}

// TestConventionsEnvironmentPrecedence: flag > DUROWORKER_* > default, for
// root, command and worker flags; a malformed value is a usage error that
// names the variable. Not parallel (Setenv).
func TestConventionsEnvironmentPrecedence(t *testing.T) {
	e := miniEnv(t)
	t.Setenv("DUROWORKER_REDIS", e.url)
	t.Setenv("DUROWORKER_PREFIX", e.prefix)
	for _, id := range []string{"p-1", "p-2", "p-3"} {
		if code, _, stderr := runCLI(t, "start", "nobody::env", "x", "--id", id); code != exitOK {
			t.Fatalf("start %s from the environment: exit %d, %q", id, code, stderr)
		}
	}
	// Default: every instance, a table.
	if _, out, _ := runCLI(t, "list"); strings.Count(out, "nobody::env") != 3 || strings.Contains(out, "next:") {
		t.Errorf("list with the default --limit:\n%s", out)
	}
	// Environment over the default.
	t.Setenv("DUROWORKER_LIST_LIMIT", "1")
	t.Setenv("DUROWORKER_OUTPUT", "json")
	code, out, stderr := runCLI(t, "list")
	var page struct {
		Instances []jsonInstance `json:"instances"`
		Next      *int           `json:"next"`
	}
	if err := json.Unmarshal([]byte(out), &page); code != exitOK || err != nil || len(page.Instances) != 1 || page.Next == nil || *page.Next != 1 {
		t.Errorf("list with DUROWORKER_LIST_LIMIT=1 DUROWORKER_OUTPUT=json: exit %d, %v, %q %q", code, err, out, stderr)
	}
	// Flags over the environment.
	code, out, _ = runCLI(t, "list", "--limit", "2", "-o", "table")
	if code != exitOK || strings.Count(out, "nobody::env") != 2 || !strings.Contains(out, "next: --offset 2") {
		t.Errorf("list --limit 2 -o table over the environment: exit %d\n%s", code, out)
	}
	if code, _, stderr := runCLI(t, "status", "p-1", "--prefix", "other"); code != exitNotFound {
		t.Errorf("--prefix does not override DUROWORKER_PREFIX: exit %d, %q", code, stderr)
	}
	// Malformed values.
	t.Setenv("DUROWORKER_LIST_LIMIT", "lots")
	code, _, stderr = runCLI(t, "list", "-o", "table")
	if code != exitUsage || !strings.Contains(stderr, `DUROWORKER_LIST_LIMIT="lots": not a valid int for --limit`) {
		t.Errorf("malformed DUROWORKER_LIST_LIMIT: exit %d, %q", code, stderr)
	}
	if code, _, _ := runCLI(t, "list", "--limit", "1", "-o", "table"); code != exitOK {
		t.Errorf("a flag does not shadow a malformed variable: exit %d", code)
	}
	t.Setenv("DUROWORKER_OUTPUT", "yaml")
	if code, _, stderr := runCLI(t, "metrics"); code != exitUsage || !strings.Contains(stderr, "DUROWORKER_OUTPUT=\"yaml\"") {
		t.Errorf("malformed DUROWORKER_OUTPUT: exit %d, %q", code, stderr)
	}
	// A worker ignores DUROWORKER_OUTPUT (exported for the other commands)
	// but refuses -o json given to it.
	t.Setenv("DUROWORKER_OUTPUT", "json")
	t.Setenv("DUROWORKER_LOG_LEVEL", "loud")
	if code, _, stderr := runCLI(t, "worker"); code != exitUsage || !strings.Contains(stderr, `--log-level \"loud\"`) {
		t.Errorf("worker with DUROWORKER_OUTPUT=json: exit %d, %q; want its own usage error", code, stderr)
	}
	if code, _, stderr := runCLI(t, "worker", "-o", "json"); code != exitUsage || !strings.Contains(stderr, "prints no results") {
		t.Errorf("worker -o json: exit %d, %q", code, stderr)
	}
	os.Unsetenv("DUROWORKER_LOG_LEVEL")
	os.Unsetenv("DUROWORKER_OUTPUT")
	t.Setenv("DUROWORKER_SHUTDOWN_TIMEOUT", "soon")
	if code, _, stderr := runCLI(t, "worker"); code != exitUsage || !strings.Contains(stderr, "DUROWORKER_SHUTDOWN_TIMEOUT") {
		t.Errorf("malformed DUROWORKER_SHUTDOWN_TIMEOUT: exit %d, %q", code, stderr)
	}
	os.Unsetenv("DUROWORKER_SHUTDOWN_TIMEOUT")

	// Worker flags: DUROWORKER_<FLAG>, the command line still wins.
	t.Setenv("DUROWORKER_NODE_ID", "env-node")
	t.Setenv("DUROWORKER_LOG_LEVEL", "loud")
	if code, _, stderr := runCLI(t, "worker"); code != exitUsage || !strings.Contains(stderr, `--log-level "loud"`) {
		t.Errorf("DUROWORKER_LOG_LEVEL=loud: exit %d, %q", code, stderr)
	}
	t.Setenv("DUROWORKER_LOG_LEVEL", "info")
	stop := e.startWorker()
	waitNode(t, e, "env-node")
	if _, logs := stop(); !strings.Contains(logs, `msg="worker started" node=env-node`) {
		t.Errorf("DUROWORKER_NODE_ID not applied:\n%s", logs)
	}
	stop = e.startWorker("--node-id", "flag-node")
	waitNode(t, e, "flag-node")
	if _, logs := stop(); !strings.Contains(logs, `msg="worker started" node=flag-node`) {
		t.Errorf("--node-id does not override DUROWORKER_NODE_ID:\n%s", logs)
	}
}

// waitNode polls client.ListNodes until node id is live.
func waitNode(t *testing.T, e *opsEnv, id string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		nodes, err := e.client.ListNodes(context.Background())
		for _, n := range nodes {
			if n.ID == id && n.Live {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s never came up: %+v %v", id, nodes, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestConventionsExitCodes: 2 usage, 3 not found, 4 orchestration failed,
// 5 timed out, 1 anything else.
func TestConventionsExitCodes(t *testing.T) {
	t.Parallel()
	e := miniEnv(t)
	e.ok("start", "nobody::pending", "x", "--id", "pending-1")
	for _, c := range []struct {
		code int
		want string
		args []string
	}{
		{exitUsage, "unknown flag: --bogus", []string{"list", "--bogus"}},
		{exitUsage, "usage: duroworker status ID", []string{"status"}},
		{exitUsage, `unknown command "nosuch"`, []string{"nosuch"}},
		{exitUsage, `required flag(s) "keep-last" not set`, []string{"prune", "x"}},
		{exitUsage, `invalid argument "maybe" for "-o, --output" flag: want table, json or jsonl`, []string{"list", "-o", "maybe"}},
		{exitUsage, "prints no results: -o json", []string{"dev", "-o", "json"}},
		{exitUsage, "is not a dead-letter id", []string{"dlq", "drop", "nonsense"}},
		{exitUsage, "invalid input", []string{"start", "n", "--version", "x.y"}},
		{exitNotFound, `instance "nope" not found`, []string{"status", "nope"}},
		{exitNotFound, `instance "nope" not found`, []string{"wait", "nope"}},
		{exitNotFound, `dead letter "1-0" not found`, []string{"dlq", "drop", "1-0"}},
		{exitNotFound, "instance pending-1 has no execution 1", []string{"history", "pending-1", "--execution", "1"}},
		{exitTimedOut, "timed out after 100ms waiting for pending-1 to end (still Pending)", []string{"wait", "pending-1", "--timeout", "100ms"}},
		{exitError, `instance "pending-1" already exists`, []string{"start", "nobody::pending", "--id", "pending-1"}},
	} {
		e.failsWith(c.code, c.want, c.args...)
	}

	// An orchestration that fails: wait and start --wait exit 4.
	e.startWorker()
	e.ok("start", approvalName, `{"timeout_ms":3600000}`, "--id", "doomed")
	e.waitRunning("doomed")
	e.ok("cancel", "doomed", "on purpose")
	e.failsWith(exitFailed, "instance doomed failed: [", "wait", "doomed", "--timeout", "30s")
	e.failsWith(exitFailed, "cancelled: on purpose", "wait", "doomed", "-o", "json")

	// The mapping itself.
	for _, c := range []struct {
		err  error
		code int
	}{
		{nil, exitOK},
		{errors.New("boom"), exitError},
		{usagef("--x: bad"), exitUsage},
		{fmt.Errorf("sending to x: %w", client.ErrInvalidInput), exitUsage},
		{fmt.Errorf("deleting x: %w", client.ErrInstanceNotFound), exitNotFound},
		{reword(client.ErrExecutionNotFound, "no execution"), exitNotFound},
		{fmt.Errorf("dropping: %w", client.ErrDeadLetterNotFound), exitNotFound},
		{reword(errInstanceFailed, "instance x failed"), exitFailed},
		{reword(errTimedOut, "timed out"), exitTimedOut},
		{errors.New("unknown command \"x\" for \"duroworker\""), exitUsage},
	} {
		if got := exitCode(c.err); got != c.code {
			t.Errorf("exitCode(%v) = %d, want %d", c.err, got, c.code)
		}
	}
}

// jsonError decodes stderr as the one JSON error object of -o json/jsonl.
func jsonError(t *testing.T, stderr string) (msg string, code int) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	var v struct {
		Error *string `json:"error"`
		Code  *int    `json:"code"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &v); err != nil || v.Error == nil || v.Code == nil {
		t.Fatalf("stderr does not end with a JSON error object: %v in %q", err, stderr)
	}
	return *v.Error, *v.Code
}

// TestConventionsJSONErrorsOnStderr: under -o json and jsonl an error is
// one JSON object on stderr with its exit status, and names the instance
// once, whatever the command.
func TestConventionsJSONErrorsOnStderr(t *testing.T) {
	t.Parallel()
	e := miniEnv(t)
	for _, args := range [][]string{
		{"status", "nope"}, {"info", "nope"}, {"history", "nope"}, {"raise", "nope", "ev"}, {"enqueue", "nope", "q"},
		{"cancel", "nope"}, {"wait", "nope"}, {"delete", "nope"}, {"prune", "nope", "--keep-last", "1"},
	} {
		for _, format := range []string{"json", "jsonl"} {
			code, stdout, stderr := e.cli(append(args, "-o", format)...)
			msg, jcode := jsonError(t, stderr)
			if code != exitNotFound || jcode != exitNotFound || stdout != "" || strings.Count(stderr, "\n") != 1 ||
				msg != `instance "nope" not found` {
				t.Errorf("%s -o %s: exit %d, stdout %q, stderr %q; want one JSON error with code 3", args[0], format, code, stdout, stderr)
			}
		}
		// Human output names it once too.
		if _, _, stderr := e.cli(args...); stderr != "duroworker: instance \"nope\" not found\n" {
			t.Errorf("%s: stderr %q", args[0], stderr)
		}
	}
	// Usage errors, also when the command line does not parse.
	for _, args := range [][]string{{"status", "--bogus", "-o", "json"}, {"-o", "json", "status"}, {"list", "--limit", "0", "--output=jsonl"}} {
		code, _, stderr := e.cli(args...)
		if _, jcode := jsonError(t, stderr); code != exitUsage || jcode != exitUsage {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
	}
	// An unreachable Redis.
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, "list", "-o", "json", "--redis", fmt.Sprintf("redis://127.0.0.1:%d/0", port))
	if msg, jcode := jsonError(t, stderr); code != exitError || jcode != exitError || !strings.HasPrefix(msg, "cannot reach Redis at ") {
		t.Errorf("unreachable Redis -o json: exit %d, %q", code, stderr)
	}
	// The deprecated --json still gives JSON, with a warning.
	code, stdout, stderr := e.cli("start", "nobody::json", "x", "--id", "dep-1", "--json")
	var started map[string]any
	if err := json.Unmarshal([]byte(stdout), &started); code != exitOK || err != nil || started["instance_id"] != "dep-1" ||
		!strings.Contains(stderr, "--json is deprecated: use -o json") {
		t.Errorf("start --json: exit %d, %q %q", code, stdout, stderr)
	}
	code, _, stderr = runCLI(t, "bench", "report", "/nonexistent.json", "--json", "x.json")
	if code == exitOK || !strings.Contains(stderr, "--json is deprecated: use --out FILE") {
		t.Errorf("bench --json: exit %d, %q", code, stderr)
	}
}

// redisReply is a Redis error reply as go-redis returns it.
type redisReply string

func (r redisReply) Error() string { return string(r) }
func (redisReply) RedisError()     {}

// TestConventionsRedisErrorWords: raw Redis and network errors are put
// into words.
func TestConventionsRedisErrorWords(t *testing.T) {
	t.Parallel()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, "status", "x", "--redis", fmt.Sprintf("redis://127.0.0.1:%d/0", port))
	want := fmt.Sprintf("duroworker: cannot reach Redis at redis://127.0.0.1:%d/0: connection refused (is Redis running there?)\n", port)
	if code != exitError || stderr != want {
		t.Errorf("connection refused: exit %d, %q; want %q", code, stderr, want)
	}

	// In a real process, go-redis's own log lines stay silenced: stderr is
	// the one JSON error.
	code, _, stderr = runProcess(t, nil, "list", "-o", "json", "--redis", fmt.Sprintf("redis://127.0.0.1:%d/0", port))
	if msg, jcode := jsonError(t, stderr); code != exitError || jcode != exitError || strings.Count(stderr, "\n") != 1 ||
		!strings.Contains(msg, "connection refused (is Redis running there?)") || strings.Contains(stderr, "dial tcp") {
		t.Errorf("list -o json with Redis down (process): exit %d, stderr %q", code, stderr)
	}

	srv := redistest.Start(t)
	admin := srv.Client(t)
	if err := admin.Do(context.Background(), "ACL", "SETUSER", "app", "on", ">right", "~*", "&*", "+@all").Err(); err != nil {
		t.Fatal(err)
	}
	e := newOpsEnv(t, srv.URL(), admin)
	wrong := strings.Replace(srv.URL(), "redis://", "redis://app:wrong@", 1)
	code, _, stderr = runCLI(t, "status", "x", "--redis", wrong)
	if code != exitError || !strings.Contains(stderr, "Redis at redis://app:xxxxx@") || !strings.Contains(stderr, "refused the credentials") ||
		strings.Contains(stderr, "WRONGPASS") || strings.Contains(stderr, "wrong") {
		t.Errorf("wrong password: exit %d, %q", code, stderr)
	}
	for _, args := range [][]string{{"dlq", "drop", "nonsense"}, {"dlq", "requeue", "99999999999999999999-0"}} {
		code, _, stderr := e.cli(args...)
		if code == exitOK || !strings.Contains(stderr, "dead-letter id") || strings.Contains(stderr, "ERR") || strings.Contains(stderr, "Invalid stream ID") {
			t.Errorf("%v: exit %d, %q; want words, not the raw Redis error", args, code, stderr)
		}
	}

	// Replies that only a broken or foreign Redis gives.
	for raw, words := range map[string]string{
		"ERR user_script:12: Script attempted to access nonexistent global variable 'x' script: abc": "a store script failed",
		"NOPERM User app has no permissions to run the 'evalsha' command":                            "Redis denied the user a permission",
		"READONLY You can't write against a read only replica.":                                      "read-only replica",
		"OOM command not allowed when used memory > 'maxmemory'.":                                    "out of memory",
		"WRONGPASS invalid username-password pair or user is disabled.":                              "refused the credentials",
	} {
		msg := errorMessage(fmt.Errorf("dropping dead letter 1-0: %w", redisReply(raw)))
		if !strings.HasPrefix(msg, "dropping dead letter 1-0: ") || !strings.Contains(msg, words) || strings.Contains(msg, raw) {
			t.Errorf("%q shown as %q; want %q", raw, msg, words)
		}
	}
}

// waitServed polls client.ServedBy until a live worker serves name.
func waitServed(t *testing.T, e *opsEnv, name string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		nodes, err := e.client.ServedBy(context.Background(), name, "")
		if err == nil && len(nodes) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no worker serves %s: %v %v", name, nodes, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestConventionsStartRequireServed: start warns when no live worker
// serves the name and version, and --require-served refuses (exit 1, no
// instance); with a worker, neither happens.
func TestConventionsStartRequireServed(t *testing.T) {
	t.Parallel()
	e := miniEnv(t)
	ctx := context.Background()
	const warning = "duroworker: warning: no live worker serves examples::orchestration::hello: the instance stays Pending until one does\n"
	code, _, stderr := e.cli("start", helloName, "x", "--id", "unserved-1")
	if code != exitOK || stderr != warning {
		t.Errorf("start without a worker: exit %d, stderr %q; want %q", code, stderr, warning)
	}
	code, stdout, stderr := e.cli("start", helloName, "x", "--id", "unserved-2", "--require-served")
	if code != exitError || stdout != "" || !strings.Contains(stderr, "no live worker serves examples::orchestration::hello: not started (--require-served)") {
		t.Errorf("start --require-served without a worker: exit %d, %q %q", code, stdout, stderr)
	}
	if st, err := e.client.Status(ctx, "unserved-2"); err != nil || st.State != client.StateNotFound {
		t.Errorf("start --require-served created the instance: %+v %v", st, err)
	}

	e.startWorker()
	waitServed(t, e, helloName)
	code, stdout, stderr = e.cli("start", helloName, "x", "--id", "served-1", "--require-served", "--wait", "--timeout", "30s")
	if code != exitOK || stderr != "" || !strings.Contains(stdout, "Completed") {
		t.Errorf("start --require-served with a worker: exit %d, %q %q", code, stdout, stderr)
	}
	code, _, stderr = e.cli("start", helloName, "x", "--id", "served-2", "--version", "9.9.9", "--require-served")
	if code != exitError || !strings.Contains(stderr, "no live worker serves examples::orchestration::hello version 9.9.9") {
		t.Errorf("start --version 9.9.9 --require-served: exit %d, %q", code, stderr)
	}
	code, _, stderr = e.cli("start", helloName, "x", "--id", "served-4", "--version", "x.y", "--require-served")
	if code != exitUsage || !strings.Contains(stderr, `invalid input: version "x.y" is not a semver version`) || strings.Contains(stderr, "warning") {
		t.Errorf("start --version x.y --require-served: exit %d, %q", code, stderr)
	}
	code, _, stderr = e.cli("start", helloName, "x", "--id", "served-3", "--version", "9.9.9")
	if code != exitOK || !strings.Contains(stderr, "warning: no live worker serves examples::orchestration::hello version 9.9.9") {
		t.Errorf("start --version 9.9.9: exit %d, %q", code, stderr)
	}
}

// TestConventionsStatusInfoListAgree: status, info and list name the state
// "status" (fields and JSON) and the paging cursor "next" (JSON, jsonl and
// the table footer), as dlq list does.
func TestConventionsStatusInfoListAgree(t *testing.T) {
	t.Parallel()
	e := miniEnv(t)
	e.ok("start", "nobody::agree", "x", "--id", "agree-1")
	e.ok("start", "nobody::agree", "x", "--id", "agree-2")

	var st, info map[string]any
	e.json(&st, "status", "agree-1")
	e.json(&info, "info", "agree-1")
	var page map[string]any
	e.json(&page, "list", "--limit", "1")
	instances, _ := page["instances"].([]any)
	if len(instances) != 1 {
		t.Fatalf("list --limit 1 -o json: %v", page)
	}
	listed, _ := instances[0].(map[string]any)
	for what, doc := range map[string]map[string]any{"status": st, "info": info, "list": listed} {
		if doc["status"] != "Pending" || doc["state"] != nil || doc["instance_id"] != "agree-1" {
			t.Errorf("%s -o json: %v; want status Pending and no state", what, doc)
		}
	}
	if next, ok := page["next"].(float64); !ok || next != 1 || page["next_offset"] != nil {
		t.Errorf("list --limit 1 -o json: next %v", page)
	}
	var last map[string]any
	e.json(&last, "list", "--offset", "1")
	if v, ok := last["next"]; !ok || v != nil {
		t.Errorf("list of the last page: next %v, want null", last)
	}
	var dl map[string]any
	e.json(&dl, "dlq", "list")
	if v, ok := dl["next"]; !ok || v != nil || dl["next_after"] != nil {
		t.Errorf("dlq list -o json: %v; want next null", dl)
	}

	// jsonl: one instance per line, then the cursor.
	lines := strings.Split(strings.TrimSuffix(e.ok("list", "--limit", "1", "-o", "jsonl"), "\n"), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"instance_id":"agree-1"`) || !strings.Contains(lines[0], `"status":"Pending"`) || lines[1] != `{"next":1}` {
		t.Errorf("list -o jsonl: %q", lines)
	}
	if out := e.ok("list", "--offset", "1", "-o", "jsonl"); strings.Count(out, "\n") != 1 || strings.Contains(out, "next") {
		t.Errorf("list -o jsonl of the last page: %q; want one line, no next", out)
	}

	// Tables: "Status:" fields, a STATUS column, a "next:" footer.
	mustMatch(t, "status", `(?m)^Status:\s+Pending$`, e.ok("status", "agree-1"))
	mustMatch(t, "info", `(?m)^Status:\s+Pending$`, e.ok("info", "agree-1"))
	out := e.ok("list", "--limit", "1")
	mustMatch(t, "list", `(?m)^INSTANCE\s+NAME\s+VERSION\s+STATUS\s`, out)
	mustMatch(t, "list", `(?m)^next: --offset 1$`, out)
	for _, o := range []string{e.ok("status", "agree-1"), e.ok("info", "agree-1"), out} {
		if strings.Contains(o, "State") || strings.Contains(o, "more:") {
			t.Errorf("output says State or more:\n%s", o)
		}
	}
}
