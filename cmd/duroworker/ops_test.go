package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/internal/redistest"
	"github.com/duroworker/duroworker/internal/replay"
	"github.com/duroworker/duroworker/queue"
	"github.com/duroworker/duroworker/worker"
)

// Example names used by the tests.
const (
	helloName    = "examples::orchestration::hello"
	fanOutName   = "examples::orchestration::fan-out"
	approvalName = "examples::orchestration::approval"
	monitorName  = "examples::orchestration::health-monitor"
)

// opsEnv is one namespace of one Redis, driven through the CLI.
type opsEnv struct {
	t      *testing.T
	url    string
	prefix string
	client *client.Client
	store  *queue.Store
	rdb    *redis.Client
}

func newOpsEnv(t *testing.T, url string, rdb *redis.Client) *opsEnv {
	prefix := "cli-" + strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	store := queue.New(rdb, queue.Options{Prefix: prefix})
	c := client.New(store)
	t.Cleanup(func() { _ = c.Close() })
	return &opsEnv{t: t, url: url, prefix: prefix, client: c, store: store, rdb: rdb}
}

// miniEnv starts a miniredis for the test.
func miniEnv(t *testing.T) *opsEnv {
	m, rdb := redistest.StartMini(t)
	return newOpsEnv(t, "redis://"+m.Addr(), rdb)
}

// cli runs the command with this environment's --redis and --prefix.
func (e *opsEnv) cli(args ...string) (int, string, string) {
	e.t.Helper()
	return runCLI(e.t, append(args, "--redis", e.url, "--prefix", e.prefix)...)
}

// ok runs the command, requires exit 0 and returns stdout.
func (e *opsEnv) ok(args ...string) string {
	e.t.Helper()
	code, stdout, stderr := e.cli(args...)
	if code != 0 {
		e.t.Fatalf("duroworker %s: exit %d, stderr %q", strings.Join(args, " "), code, stderr)
	}
	return stdout
}

// fails runs the command and requires exit 1 with wantErr in stderr.
func (e *opsEnv) fails(wantErr string, args ...string) string {
	e.t.Helper()
	return e.failsWith(exitError, wantErr, args...)
}

// failsWith runs the command and requires exit status code with wantErr
// in stderr.
func (e *opsEnv) failsWith(code int, wantErr string, args ...string) string {
	e.t.Helper()
	got, stdout, stderr := e.cli(args...)
	if got != code || !strings.Contains(stderr, wantErr) {
		e.t.Errorf("duroworker %s: exit %d, stderr %q; want exit %d and %q", strings.Join(args, " "), got, stderr, code, wantErr)
	}
	return stdout
}

// json runs the command with -o json, requires exit 0 and decodes stdout.
func (e *opsEnv) json(v any, args ...string) {
	e.t.Helper()
	out := e.ok(append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		e.t.Fatalf("duroworker %s -o json: %v in %q", strings.Join(args, " "), err, out)
	}
}

// startWorker runs `duroworker worker` in-process until the test ends or
// the returned stop is called; stop returns the exit status and stderr.
func (e *opsEnv) startWorker(args ...string) (stop func() (int, string)) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuffer
	done := make(chan int, 1)
	full := append([]string{"worker", "--redis", e.url, "--prefix", e.prefix, "--block-timeout", "50ms"}, args...)
	go func() { done <- run(ctx, full, &out, &errOut) }()
	var code int
	stopped := false
	stop = func() (int, string) {
		if !stopped {
			stopped = true
			cancel()
			select {
			case code = <-done:
			case <-time.After(40 * time.Second):
				e.t.Fatalf("worker did not stop; stderr:\n%s", errOut.String())
			}
			e.t.Logf("duroworker %s: exit %d\n--- stderr\n%s", strings.Join(full, " "), code, errOut.String())
		}
		return code, errOut.String()
	}
	e.t.Cleanup(func() { stop() })
	return stop
}

// waitRunning polls `status -o json` until the instance ran its first turn.
func (e *opsEnv) waitRunning(id string) {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var st jsonStatus
		e.json(&st, "status", id)
		if st.Status == "Running" && st.ExecutionID > 0 {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s did not start running: %+v", id, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func mustMatch(t *testing.T, what, pattern, s string) {
	t.Helper()
	if !regexp.MustCompile(pattern).MatchString(s) {
		t.Errorf("%s: no match for %s in\n%s", what, pattern, s)
	}
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestOpsLifecycle drives the examples through a `duroworker worker` run
// in-process, with every management command, on miniredis and on a real
// redis-server.
func TestOpsLifecycle(t *testing.T) {
	t.Parallel()
	redistest.ForEachBackend(t, func(t *testing.T, rdb *redis.Client, b redistest.Backend) {
		url := ""
		if b.Real {
			url = b.Server.URL()
		} else {
			url = "redis://" + b.Mini.Addr()
		}
		e := newOpsEnv(t, url, rdb)
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
		stopWorker := e.startWorker("--node-id", "cli-node", "--metrics-addr", fmt.Sprintf("127.0.0.1:%d", port))
		testLifecycle(t, e)
		checkMetricsEndpoint(t, metricsURL)
		code, stderr := stopWorker()
		if code != 0 {
			t.Errorf("worker exited %d after cancellation", code)
		}
		for _, want := range []string{`msg="serving metrics" url=` + metricsURL, `msg="worker started" node=cli-node`,
			`msg="shutting down" node=cli-node reason="context cancelled"`, `msg="worker stopped" node=cli-node`} {
			if !strings.Contains(stderr, want) {
				t.Errorf("worker log lacks %q", want)
			}
		}
		if resp, err := http.Get(metricsURL); err == nil {
			resp.Body.Close()
			t.Errorf("metrics endpoint still answers after the worker stopped")
		}
	})
}

func testLifecycle(t *testing.T, e *opsEnv) {
	// start --wait: the worker processes the example.
	out := e.ok("start", helloName, "world", "--id", "hello-1", "--wait", "--timeout", "30s")
	mustMatch(t, "start --wait", `(?m)^started examples::orchestration::hello as instance hello-1`, out)
	mustMatch(t, "start --wait", `(?m)^Status:\s+Completed$`, out)
	mustMatch(t, "start --wait", `(?m)^Output:\s+Hello, world!$`, out)

	var fan jsonStatus
	e.json(&fan, "start", fanOutName, "10", "--wait", "--timeout", "30s")
	if !uuidRE.MatchString(fan.InstanceID) || fan.Status != "Completed" || fan.Output != "385" || fan.Version != "1.0.0" || fan.ExecutionID != 1 {
		t.Errorf("start fan-out -o json --wait: %+v", fan)
	}
	out = e.ok("start", helloName, "again")
	m := regexp.MustCompile(`(?m)^started examples::orchestration::hello as instance (\S+)$`).FindStringSubmatch(out)
	if m == nil || !uuidRE.MatchString(m[1]) {
		t.Errorf("start without --id does not print a generated id: %q", out)
	}
	var started struct {
		InstanceID string `json:"instance_id"`
		Name       string `json:"name"`
	}
	e.json(&started, "start", helloName, "json", "--id", "hello-json")
	if started.InstanceID != "hello-json" || started.Name != helloName {
		t.Errorf("start -o json: %+v", started)
	}
	e.fails(`instance "hello-1" already exists`, "start", helloName, "x", "--id", "hello-1")

	// status
	out = e.ok("status", "hello-1")
	for _, p := range []string{`(?m)^Instance:\s+hello-1$`, `(?m)^Status:\s+Completed$`, `(?m)^Version:\s+1\.0\.0$`, `(?m)^Execution:\s+1$`, `(?m)^Custom status:\s+\(not set\)$`} {
		mustMatch(t, "status", p, out)
	}
	var st map[string]any
	e.json(&st, "status", "hello-1")
	if st["status"] != "Completed" || st["state"] != nil || st["output"] != "Hello, world!" || st["custom_status"] != nil || st["instance_id"] != "hello-1" {
		t.Errorf("status -o json: %v", st)
	}

	// info
	out = e.ok("info", "hello-1")
	for _, p := range []string{`(?m)^Name:\s+examples::orchestration::hello$`, `(?m)^Status:\s+Completed$`, `(?m)^Output:\s+Hello, world!$`,
		`(?m)^Engine pin:\s+` + regexp.QuoteMeta(engine.Version) + `$`, `(?m)^Created:\s+\d{4}-`, `(?m)^Parent:\s+-$`,
		`(?m)^EXECUTION\s+STATUS\s+STARTED\s+ENDED\s+EVENTS\s+OUTPUT$`, `(?m)^1\s+Completed\s+\S+\s+\S+\s+4\s+Hello, world!$`} {
		mustMatch(t, "info", p, out)
	}
	var info jsonInstance
	e.json(&info, "info", "hello-1")
	if info.Name != helloName || info.Status != "Completed" || info.EnginePin != engine.Version || info.CreatedAt.IsZero() ||
		len(info.Executions) != 1 || info.Executions[0].EventCount != 4 || info.Executions[0].Status != "Completed" {
		t.Errorf("info -o json: %+v", info)
	}

	// list
	out = e.ok("list")
	mustMatch(t, "list", `(?m)^INSTANCE\s+NAME\s+VERSION\s+STATUS\s+EXECUTION\s+CREATED\s+UPDATED$`, out)
	mustMatch(t, "list", `(?m)^hello-1\s+examples::orchestration::hello\s+1\.0\.0\s+Completed\s+1\s`, out)
	var page struct {
		Instances []jsonInstance `json:"instances"`
		Next      *int           `json:"next"`
	}
	e.json(&page, "list", "--status", "completed")
	if len(page.Instances) < 3 || page.Next != nil {
		t.Errorf("list --status completed -o json: %+v", page)
	}
	for _, in := range page.Instances {
		if in.Status != "Completed" {
			t.Errorf("list --status completed lists %s %s", in.InstanceID, in.Status)
		}
	}
	out = e.ok("list", "--limit", "1")
	mustMatch(t, "list --limit 1", `(?m)^next: --offset 1$`, out)
	if strings.Count(out, "examples::orchestration::") != 1 {
		t.Errorf("list --limit 1 lists more than one instance:\n%s", out)
	}

	// history
	out = e.ok("history", "hello-1")
	for _, p := range []string{
		`(?m)^ID\s+KIND\s+NAME\s+PAYLOAD$`,
		`(?m)^1\s+OrchestrationStarted\s+examples::orchestration::hello\s+version=1\.0\.0 input=world$`,
		`(?m)^2\s+ActivityScheduled\s+examples::activity::greet\s+input=world$`,
		`(?m)^3\s+ActivityCompleted\s+-\s+source=2 result=Hello, world!$`,
		`(?m)^4\s+OrchestrationCompleted\s+-\s+result=Hello, world!$`,
	} {
		mustMatch(t, "history", p, out)
	}
	var hist struct {
		InstanceID string         `json:"instance_id"`
		Execution  int64          `json:"execution"`
		Events     []replay.Event `json:"events"`
	}
	e.json(&hist, "history", "hello-1", "--execution", "1")
	if hist.Execution != 1 || len(hist.Events) != 4 || hist.Events[0].Kind != replay.EventOrchestrationStarted || hist.Events[3].Result != "Hello, world!" {
		t.Errorf("history -o json: %+v", hist)
	}
	e.failsWith(exitNotFound, "has no execution 2", "history", "hello-1", "--execution", "2")

	// raise: an approval waits for the event.
	e.ok("start", approvalName, `{"timeout_ms":3600000}`, "--id", "approval-1")
	e.waitRunning("approval-1")
	out = e.ok("raise", "approval-1", "approve", "tester")
	if out != "sent event \"approve\" to approval-1\n" {
		t.Errorf("raise: %q", out)
	}
	out = e.ok("wait", "approval-1", "--timeout", "30s")
	mustMatch(t, "wait approved", `(?m)^Output:\s+approved$`, out)
	mustMatch(t, "history of the approval", `(?m)^\d+\s+ExternalEvent\s+approve\s+result=tester$`, e.ok("history", "approval-1"))
	e.fails("instance hello-1 has already ended", "raise", "hello-1", "approve")

	// enqueue, then cancel: wait reports the failure with a non-zero exit.
	e.ok("start", approvalName, `{"timeout_ms":3600000}`, "--id", "approval-2")
	e.waitRunning("approval-2")
	var sent map[string]string
	e.json(&sent, "enqueue", "approval-2", "inbox", "hello")
	if sent["instance_id"] != "approval-2" || sent["queue"] != "inbox" || sent["data"] != "hello" {
		t.Errorf("enqueue -o json: %v", sent)
	}
	if out := e.ok("cancel", "approval-2", "by test"); out != "cancellation of approval-2 requested\n" {
		t.Errorf("cancel: %q", out)
	}
	out = e.failsWith(exitFailed, "instance approval-2 failed: ", "wait", "approval-2", "--timeout", "30s")
	mustMatch(t, "wait cancelled", `(?m)^Status:\s+Failed$`, out)
	mustMatch(t, "wait cancelled", `(?m)^Failure:\s+.*cancelled: by test`, out)
	e.fails("instance approval-2 has already ended", "cancel", "approval-2")
	e.failsWith(exitTimedOut, "timed out after 100ms waiting for", "start", approvalName, `{"timeout_ms":3600000}`, "--id", "approval-3", "--wait", "--timeout", "100ms")

	// delete: a running instance needs --force.
	e.waitRunning("approval-3")
	e.fails("--force", "delete", "approval-3")
	if out := e.ok("delete", "approval-3", "--force"); !strings.HasPrefix(out, "deleted 1 instance, 1 execution, ") {
		t.Errorf("delete --force: %q", out)
	}
	e.failsWith(exitNotFound, `instance "approval-3" not found`, "status", "approval-3")
	var del jsonDeleteResult
	e.json(&del, "delete", "hello-1")
	if del.Instances != 1 || del.Executions != 1 || del.Events != 4 {
		t.Errorf("delete -o json: %+v", del)
	}

	// prune: the health monitor continues as new twice.
	out = e.ok("start", monitorName, `{"target":"db-1","interval_ms":20,"cycles":3}`, "--id", "monitor-1", "--wait", "--timeout", "30s")
	mustMatch(t, "monitor", `(?m)^Execution:\s+3$`, out)
	mustMatch(t, "monitor", `(?m)^Version:\s+1\.0\.2$`, out)
	mustMatch(t, "info before prune", `(?m)^1\s+ContinuedAsNew\s`, e.ok("info", "monitor-1"))
	if out := e.ok("prune", "monitor-1", "--keep-last", "1"); !regexp.MustCompile(`^pruned 2 executions \(\d+ events\) of monitor-1\n$`).MatchString(out) {
		t.Errorf("prune: %q", out)
	}
	e.json(&info, "info", "monitor-1")
	if len(info.Executions) != 1 || info.Executions[0].ExecutionID != 3 {
		t.Errorf("executions after prune: %+v", info.Executions)
	}
	e.failsWith(exitNotFound, "has no execution 1", "history", "monitor-1", "--execution", "1")
	var pruned map[string]any
	e.json(&pruned, "prune", "monitor-1", "--keep-last", "1")
	if pruned["executions"] != 0.0 {
		t.Errorf("second prune -o json: %v", pruned)
	}

	// queues: work nobody serves is flagged.
	e.ok("start", "nobody::serves", "x", "--id", "orphan-1")
	out = e.ok("queues")
	mustMatch(t, "queues", `(?m)^KIND\s+BUCKET\s+READY\s+DELAYED\s+LOCKED\s+UNSERVED$`, out)
	mustMatch(t, "queues", `(?m)^orchestration\s+o:nobody::serves\s+\d+\s+\d+\s+\d+\s+yes$`, out)
	mustMatch(t, "queues", `(?m)^timers waiting: \d+$`, out)
	var depths struct {
		Orchestrations []jsonBucket `json:"orchestrations"`
		Activities     []jsonBucket `json:"activities"`
		Timers         *int         `json:"timers"`
	}
	e.json(&depths, "queues")
	found := false
	for _, b := range depths.Orchestrations {
		if b.Bucket == "o:nobody::serves" && b.Unserved && b.Ready+b.Delayed+b.Locked == 1 {
			found = true
		}
	}
	if !found || depths.Timers == nil {
		t.Errorf("queues -o json: %+v", depths)
	}

	// bulk delete of ended instances, oldest first.
	e.json(&del, "delete", "--completed-before", "2100-01-01T00:00:00Z", "--limit", "1")
	if del.Instances != 1 {
		t.Errorf("bulk delete --limit 1: %+v", del)
	}
	if out := e.ok("delete", "--completed-before", "0s"); !strings.HasPrefix(out, "deleted 5 instances, ") {
		t.Errorf("bulk delete: %q", out)
	}
	out = e.ok("list")
	if strings.Contains(out, "Completed") || strings.Contains(out, "Failed") || !strings.Contains(out, "orphan-1") {
		t.Errorf("ended instances left after bulk delete:\n%s", out)
	}

	// metrics
	out = e.ok("metrics")
	for _, p := range []string{`(?m)^METRIC\s+VALUE$`, `(?m)^instances\s+1$`, `(?m)^pending\s+1$`, `(?m)^completed\s+0$`, `(?m)^events\s+0$`} {
		mustMatch(t, "metrics", p, out)
	}
	var met map[string]int64
	e.json(&met, "metrics")
	if met["instances"] != 1 || met["pending"] != 1 || met["running"] != 0 || met["failed"] != 0 {
		t.Errorf("metrics -o json: %v", met)
	}
}

// checkMetricsEndpoint reads the worker's Prometheus endpoint after the
// lifecycle ran the examples on it.
func checkMetricsEndpoint(t *testing.T, url string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", url, resp.Status, err)
	}
	for _, p := range []string{
		`(?m)^# TYPE duroworker_orchestration_starts_total counter$`,
		`(?m)^duroworker_orchestration_starts_total\{.*orchestration="examples::orchestration::hello".*\} [1-9]\d*$`,
		`(?m)^duroworker_activity_executions_total\{.*activity="examples::activity::greet".*\} [1-9]\d*$`,
		`(?m)^# TYPE duroworker_orchestration_turn_duration_seconds histogram$`,
		`(?m)^duroworker_orchestration_turn_duration_seconds_count\{.*\} [1-9]\d*$`,
	} {
		mustMatch(t, "metrics endpoint", p, string(body))
	}
}

// fastPoison makes poison reachable in a test.
var fastPoison = worker.Options{
	MaxAttempts:             2,
	UnregisteredBackoffBase: 10 * time.Millisecond,
	UnregisteredBackoffMax:  50 * time.Millisecond,
	NodeHeartbeat:           50 * time.Millisecond,
	BlockTimeout:            50 * time.Millisecond,
}

// TestOpsDeadLettersAndSessions poisons an instance with no handler and
// drives the dead-letter and session commands.
func TestOpsDeadLettersAndSessions(t *testing.T) {
	t.Parallel()
	e := miniEnv(t)
	ctx := context.Background()
	orchs := engine.NewOrchestrationRegistry().
		Register("Sessioned", func(ctx *engine.OrchestrationContext, in string) (string, error) {
			return ctx.ScheduleActivity("Touch", in, engine.WithSession("cart-42")).Get()
		}).MustBuild()
	acts := engine.NewActivityRegistry().
		Register("Touch", func(ctx *engine.ActivityContext, in string) (string, error) { return "touched " + in, nil }).MustBuild()
	opts := fastPoison
	opts.NodeID = "sess-node"
	w, err := worker.New(e.store, orchs, acts, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = w.Shutdown(sctx)
	})

	// Sessions.
	out := e.ok("start", "Sessioned", "cart", "--id", "sess-1", "--wait", "--timeout", "30s")
	mustMatch(t, "sessioned", `(?m)^Output:\s+touched cart$`, out)
	out = e.ok("sessions", "--owner", "sess-node")
	mustMatch(t, "sessions --owner", `(?m)^SESSION\s+OWNER\s+LEASE UNTIL\s+LAST ACTIVITY$`, out)
	mustMatch(t, "sessions --owner", `(?m)^cart-42\s+sess-node\s+\d{4}-\S+\s+\d{4}-\S+$`, out)
	var sess struct {
		Sessions []jsonSession `json:"sessions"`
	}
	e.json(&sess, "sessions", "cart-42", "nope")
	if len(sess.Sessions) != 2 || !sess.Sessions[0].Pinned || sess.Sessions[0].Owner != "sess-node" || sess.Sessions[0].LeaseUntil.IsZero() ||
		sess.Sessions[1].Pinned || sess.Sessions[1].SessionID != "nope" {
		t.Errorf("sessions -o json: %+v", sess)
	}
	mustMatch(t, "sessions of an unknown session", `(?m)^nope\s+\(not pinned\)\s+-\s+-$`, e.ok("sessions", "nope"))
	if out := e.ok("sessions", "--owner", "other-node"); out != "no sessions owned by other-node\n" {
		t.Errorf("sessions of a node without any: %q", out)
	}
	e.failsWith(exitUsage, "no index of all sessions", "sessions")

	// Dead letters: an orchestration no worker registers is poisoned.
	if out := e.ok("dlq", "list"); out != "no dead letters\n" {
		t.Errorf("dlq list on an empty stream: %q", out)
	}
	out = e.failsWith(exitFailed, "instance late-1 failed: ", "start", "LateOrch", "in", "--id", "late-1", "--wait", "--timeout", "30s")
	mustMatch(t, "poisoned", `(?m)^Failure:\s+\[poison\]`, out)
	out = e.ok("dlq", "list")
	mustMatch(t, "dlq list", `(?m)^ID\s+KIND\s+INSTANCE\s+EXECUTION\s+ATTEMPTS\s+TIME\s+REASON$`, out)
	mustMatch(t, "dlq list", `(?m)^\d+-\d+\s+orchestration\s+late-1\s+\d+\s+3/2\s+\d{4}-\S+\s+poison: orchestration late-1 exceeded 3 attempts`, out)
	var dl struct {
		DeadLetters []jsonDeadLetter `json:"dead_letters"`
		Next        *string          `json:"next"`
	}
	e.json(&dl, "dlq", "list")
	if len(dl.DeadLetters) != 1 || dl.DeadLetters[0].InstanceID != "late-1" || dl.DeadLetters[0].Kind != "orchestration" ||
		len(dl.DeadLetters[0].Messages) != 1 || dl.Next != nil {
		t.Fatalf("dlq list -o json: %+v", dl)
	}
	first := dl.DeadLetters[0].ID
	mustMatch(t, "dlq list --limit 1", `(?m)^next: --after `+regexp.QuoteMeta(first)+`$`, e.ok("dlq", "list", "--limit", "1"))
	if out := e.ok("dlq", "list", "--after", first); out != "no dead letters\n" {
		t.Errorf("dlq list --after the last: %q", out)
	}

	// Requeue: still no handler, so it is poisoned again.
	if out := e.ok("dlq", "requeue", first); out != "requeued dead letter "+first+"\n" {
		t.Errorf("dlq requeue: %q", out)
	}
	var second string
	deadline := time.Now().Add(20 * time.Second)
	for second == "" {
		e.json(&dl, "dlq", "list")
		for _, d := range dl.DeadLetters {
			if d.ID != first && d.InstanceID == "late-1" {
				second = d.ID
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the requeued instance was not poisoned again: %+v", dl)
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.failsWith(exitNotFound, fmt.Sprintf("dead letter %q not found", first), "dlq", "requeue", first)
	var dropped map[string]string
	e.json(&dropped, "dlq", "drop", second)
	if dropped["dropped"] != second {
		t.Errorf("dlq drop -o json: %v", dropped)
	}
	if out := e.ok("dlq", "list"); out != "no dead letters\n" {
		t.Errorf("dlq list after drop: %q", out)
	}
	e.failsWith(exitNotFound, `dead letter "1-0" not found`, "dlq", "drop", "1-0")
	if st, _ := e.client.Status(ctx, "late-1"); st.State != client.StateFailed {
		t.Errorf("late-1 after drop: %+v", st)
	}
}

// TestOpsErrors: unknown instances, bad URLs and bad flags exit 1 with a
// clear message.
func TestOpsErrors(t *testing.T) {
	t.Parallel()
	e := miniEnv(t)
	notFound := `instance "nope" not found`
	for _, args := range [][]string{
		{"status", "nope"}, {"info", "nope"}, {"history", "nope"}, {"raise", "nope", "ev"}, {"enqueue", "nope", "q"},
		{"cancel", "nope"}, {"wait", "nope"}, {"delete", "nope"}, {"prune", "nope", "--keep-last", "1"},
	} {
		e.failsWith(exitNotFound, notFound, args...)
	}
	for _, c := range []struct {
		code int
		want string
		args []string
	}{
		{exitUsage, "--limit must be between 1 and 1000", []string{"list", "--limit", "0"}},
		{exitUsage, `--status "bogus": want pending, running, completed or failed`, []string{"list", "--status", "bogus"}},
		{exitUsage, "--offset must not be negative", []string{"list", "--offset", "-1"}},
		{exitUsage, "--execution must not be negative", []string{"history", "x", "--execution", "-1"}},
		{exitUsage, "give an instance ID, or --completed-before", []string{"delete"}},
		{exitUsage, "not both", []string{"delete", "x", "--completed-before", "1h"}},
		{exitUsage, "--force applies to one instance", []string{"delete", "--completed-before", "1h", "--force"}},
		{exitUsage, "--limit applies to a bulk delete", []string{"delete", "x", "--limit", "3"}},
		{exitUsage, `--completed-before "yesterday": want a duration`, []string{"delete", "--completed-before", "yesterday"}},
		{exitUsage, `required flag(s) "keep-last" not set`, []string{"prune", "x"}},
		{exitUsage, "--keep-last must not be negative", []string{"prune", "x", "--keep-last", "-2"}},
		{exitUsage, "--timeout needs --wait", []string{"start", "n", "--timeout", "1s"}},
		{exitUsage, "usage: duroworker start NAME [INPUT] [flags] (got 0 arguments; see --help)", []string{"start"}},
		{exitUsage, "usage: duroworker raise ID EVENT [DATA] [flags] (got 1 argument", []string{"raise", "x"}},
		{exitUsage, "usage: duroworker status ID [flags] (got 2 arguments", []string{"status", "x", "y"}},
		{exitUsage, "unknown flag: --bogus", []string{"status", "x", "--bogus"}},
		{exitUsage, "invalid input", []string{"start", "n", "--version", "not-semver"}},
		{exitUsage, "--limit must be between 1 and 1000", []string{"dlq", "list", "--limit", "0"}},
		{exitUsage, `"any" and "none" stand alone`, []string{"worker", "--tags", "any,gpu"}},
		{exitUsage, "--tags \"gpu,,x\": empty tag", []string{"worker", "--tags", "gpu,,x"}},
		{exitUsage, "--supported-replay-versions", []string{"worker", "--supported-replay-versions", "1..2..3"}},
		{exitUsage, `--log-level "loud"`, []string{"worker", "--log-level", "loud"}},
		{exitUsage, `--monitor-up-to "2.0.0"`, []string{"worker", "--monitor-up-to", "2.0.0"}},
		{exitUsage, "--shutdown-timeout must be positive", []string{"worker", "--shutdown-timeout", "0s"}},
		{exitUsage, "worker options: ActivityLockTimeout must not be negative, got -1s", []string{"worker", "--activity-lock", "-1s"}},
		{exitError, "--metrics-addr 127.0.0.1:99999: listen tcp", []string{"worker", "--metrics-addr", "127.0.0.1:99999"}},
	} {
		e.failsWith(c.code, c.want, c.args...)
	}

	// Bad Redis URLs, never echoing the password, and an unreachable Redis.
	for _, c := range []struct{ url, want string }{
		{"http://127.0.0.1:6379", "invalid URL scheme"},
		{"redis://app:s3cret@127.0.0.1:6379/notadb", "invalid database number"},
		{"redis://app:s3cret@127.0.0.1:port/0", "--redis redis://app:xxxxx@127.0.0.1:port/0"},
		{"", "--redis is empty"},
	} {
		code, _, stderr := runCLI(t, "status", "x", "--redis", c.url)
		if code != exitUsage || !strings.Contains(stderr, c.want) || strings.Contains(stderr, "s3cret") {
			t.Errorf("--redis %q: exit %d, stderr %q; want %q without the password", c.url, code, stderr, c.want)
		}
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	down := fmt.Sprintf("redis://app:s3cret@127.0.0.1:%d/0", port)
	code, _, stderr := runCLI(t, "list", "--redis", down)
	if code != 1 || !strings.Contains(stderr, fmt.Sprintf("cannot reach Redis at redis://app:xxxxx@127.0.0.1:%d/0", port)) || strings.Contains(stderr, "s3cret") {
		t.Errorf("unreachable Redis: exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = runCLI(t, "worker", "--redis", down)
	if code != 1 || !strings.Contains(stderr, "cannot reach Redis") {
		t.Errorf("worker with an unreachable Redis: exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = runCLI(t, "status", "x", "--prefix", "a{b}")
	if code != exitUsage || !strings.Contains(stderr, `--prefix: invalid key prefix: "a{b}" contains '{'`) {
		t.Errorf("bad --prefix: exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = runCLI(t, "dlq", "bogus")
	if code != exitUsage || !strings.Contains(stderr, `unknown command "bogus" for "duroworker dlq"`) {
		t.Errorf("dlq bogus: exit %d, stderr %q", code, stderr)
	}
}

// TestOpsEnvironment: DUROWORKER_REDIS and DUROWORKER_PREFIX apply when
// the flags are not given; the flags win. Not parallel (Setenv).
func TestOpsEnvironment(t *testing.T) {
	e := miniEnv(t)
	t.Setenv(envRedis, e.url)
	t.Setenv(envPrefix, e.prefix)
	code, out, stderr := runCLI(t, "start", "nobody::env", "in", "--id", "env-1")
	if code != 0 || out != "started nobody::env as instance env-1\n" {
		t.Fatalf("start from the environment: exit %d, %q %q", code, out, stderr)
	}
	if st, err := e.client.Status(context.Background(), "env-1"); err != nil || st.State != client.StatePending {
		t.Errorf("env-1 not in the environment's namespace: %+v %v", st, err)
	}
	code, _, stderr = runCLI(t, "status", "env-1", "--prefix", "other")
	if code != exitNotFound || !strings.Contains(stderr, `instance "env-1" not found`) {
		t.Errorf("--prefix does not override %s: exit %d, %q", envPrefix, code, stderr)
	}
	code, _, stderr = runCLI(t, "status", "env-1", "--redis", "http://x")
	if code != exitUsage || !strings.Contains(stderr, "invalid URL scheme") {
		t.Errorf("--redis does not override %s: exit %d, %q", envRedis, code, stderr)
	}
}

// TestOpsPrefixValidation: prefixes that would break ACL key patterns or
// the hash tag are refused, and so is an empty DUROWORKER_PREFIX (it does
// not mean the default). Not parallel (Setenv).
func TestOpsPrefixValidation(t *testing.T) {
	for _, p := range []string{"*", "o*", "a b", "a\nb", "a?", "[a]"} {
		code, _, stderr := runCLI(t, "status", "x", "--prefix", p, "--redis", "redis://127.0.0.1:1")
		if code != exitUsage || !strings.Contains(stderr, "invalid key prefix") {
			t.Errorf("--prefix %q: exit %d, stderr %q", p, code, stderr)
		}
	}
	t.Setenv(envPrefix, "")
	code, _, stderr := runCLI(t, "status", "x", "--redis", "redis://127.0.0.1:1")
	if code != exitUsage || !strings.Contains(stderr, envPrefix+" is set to an empty string") {
		t.Errorf("empty %s: exit %d, stderr %q", envPrefix, code, stderr)
	}
}

// TestOpsRefusesInvalidUTF8: inputs and event data that are not valid
// UTF-8 are refused, not stored with U+FFFD in place of their bytes.
func TestOpsRefusesInvalidUTF8(t *testing.T) {
	e := miniEnv(t)
	e.ok("start", "nobody::x", "fine", "--id", "u1")
	for _, args := range [][]string{
		{"start", "nobody::x", "in\xff", "--id", "u2"},
		{"raise", "u1", "approve", "data\xff"},
		{"cancel", "u1", "why\xff"},
	} {
		code, _, stderr := e.cli(args...)
		if code != exitUsage || !strings.Contains(stderr, "not valid UTF-8") || strings.Contains(stderr, "warning") {
			t.Errorf("%s with invalid UTF-8: exit %d, stderr %q", args[0], code, stderr)
		}
	}
	if st, _ := e.client.Status(context.Background(), "u2"); st.State != client.StateNotFound {
		t.Errorf("a refused start created u2: %+v", st)
	}
}

// TestOpsHelp: every command has help with examples.
func TestOpsHelp(t *testing.T) {
	t.Parallel()
	for _, path := range [][]string{
		{"worker"}, {"start"}, {"status"}, {"info"}, {"list"}, {"history"}, {"raise"}, {"enqueue"}, {"cancel"}, {"wait"},
		{"delete"}, {"prune"}, {"dlq"}, {"dlq", "list"}, {"dlq", "requeue"}, {"dlq", "drop"}, {"sessions"}, {"queues"}, {"metrics"},
	} {
		code, out, _ := runCLI(t, append(path, "--help")...)
		if code != 0 || !strings.Contains(out, "Examples:") || !strings.Contains(out, "duroworker "+strings.Join(path, " ")) {
			t.Errorf("%s --help: exit %d\n%s", strings.Join(path, " "), code, out)
		}
		if path[0] != "dlq" || len(path) > 1 {
			for _, flag := range []string{"--redis", "--prefix"} {
				if !strings.Contains(out, flag) {
					t.Errorf("%s --help lacks %s", strings.Join(path, " "), flag)
				}
			}
		}
	}
	_, out, _ := runCLI(t, "worker", "--help")
	for _, want := range []string{"http://ADDR/metrics", "--supported-replay-versions", "--tags", "--max-sessions", "docs/cli.md", "DUROWORKER_REDIS"} {
		if !strings.Contains(out, want) {
			t.Errorf("worker --help lacks %q", want)
		}
	}
}

func TestParseBefore(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"36h":                  now.Add(-36 * time.Hour),
		"7d":                   now.AddDate(0, 0, -7),
		"0s":                   now,
		"2026-01-02T03:04:05Z": time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	} {
		got, err := parseBefore("--x", in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseBefore(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1h", "xd", "-2d", "2026-01-02", "soon"} {
		if _, err := parseBefore("--x", in, now); err == nil {
			t.Errorf("parseBefore(%q) accepted", in)
		}
	}
}

func TestParseTags(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]worker.TagFilter{
		"default":          worker.DefaultTagsOnly(),
		"any":              worker.AnyTag(),
		"none":             worker.NoActivities(),
		"default,gpu":      worker.DefaultAndTags("gpu"),
		" gpu , eu ":       worker.OnlyTags("gpu", "eu"),
		"gpu,default,tpu ": worker.DefaultAndTags("gpu", "tpu"),
	} {
		got, err := parseTags(in)
		if err != nil || got.String() != want.String() {
			t.Errorf("parseTags(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "any,none", "none,gpu", "gpu,", "a{b"} {
		if _, err := parseTags(in); err == nil {
			t.Errorf("parseTags(%q) accepted", in)
		}
	}
}
