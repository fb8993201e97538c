package tests

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/internal/redistest"
	"github.com/duroworker/duroworker/worker"
)

// redisCLI runs redis-cli --eval with a script from docs/protocol, the way a
// service in another language would drive duroworker.
func redisCLI(t *testing.T, srv *redistest.Server, script string, keys, args []string) string {
	t.Helper()
	host, port, _ := strings.Cut(srv.Addr(), ":")
	cmdArgs := []string{"-h", host, "-p", port, "--eval", filepath.Join("..", "docs", "protocol", script)}
	cmdArgs = append(cmdArgs, keys...)
	cmdArgs = append(cmdArgs, ",")
	cmdArgs = append(cmdArgs, args...)
	out, err := exec.Command("redis-cli", cmdArgs...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli %v: %v\n%s", cmdArgs, err, out)
	}
	return strings.TrimSpace(string(out))
}

func startKeys(p, id, bucket string) []string {
	return []string{p, p + "inst:" + id, p + "inbox:" + id, p + "ready:" + bucket, p + "buckets:o", p + "instances", p + "stats", p + "seq", p + "bystatus:Pending"}
}

// TestWireProtocolWithRedisCLI starts instances, raises an event, enqueues a
// queue message and cancels, with redis-cli and the documented scripts only;
// a Go worker picks the work up.
func TestWireProtocolWithRedisCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("needs redis-server and redis-cli")
	}
	if _, err := exec.LookPath("redis-cli"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-cli not on PATH (it comes with Debian's redis-server package)")
		}
		t.Skip("redis-cli not on PATH")
	}
	srv := redistest.Start(t)
	e := newEnv(t, srv.Client(t), true) // prefix "t"
	p := "{t}:"
	approve := func(ctx *engine.OrchestrationContext, in string) (string, error) {
		who, err := ctx.WaitForEvent("approve").Get()
		if err != nil {
			return "", err
		}
		cfg, err := ctx.DequeueEvent("config").Get()
		if err != nil {
			return "", err
		}
		return in + " approved by " + who + " with " + cfg + " on " + ctx.Version(), nil
	}
	orchs := engine.NewOrchestrationRegistry().Register("billing::approve", approve).
		RegisterVersioned("billing::approve", "2.0.0", approve).MustBuild()
	e.startWorker(orchs, nil, worker.Options{})
	ctx := context.Background()

	start := `{"kind":"Start","execution":1,"name":"billing::approve","input":"order-7"}`
	if got := redisCLI(t, srv, "start.lua", startKeys(p, "order-7", "o:billing::approve"), []string{"order-7", "billing::approve", "", "o:billing::approve", start}); got != "1" {
		t.Fatalf("start: %s", got)
	}
	if got := redisCLI(t, srv, "start.lua", startKeys(p, "order-7", "o:billing::approve"), []string{"order-7", "billing::approve", "", "o:billing::approve", start}); !strings.Contains(got, "INSTANCE_EXISTS") {
		t.Fatalf("duplicate start: %s", got)
	}
	eventually(t, 10e9, "order-7 running", func() bool {
		st, _ := e.client.Status(ctx, "order-7")
		return st.State == client.StateRunning
	})
	raiseKeys := []string{p, p + "inst:order-7", p + "inbox:order-7"}
	for _, msg := range []string{`{"kind":"QueueEvent","name":"config","result":"plan-b"}`, `{"kind":"ExternalEvent","name":"approve","result":"alice"}`} {
		if got := redisCLI(t, srv, "raise.lua", raiseKeys, []string{"order-7", msg}); got != "1" {
			t.Fatalf("raise: %s", got)
		}
	}
	if st := e.wait("order-7"); st.Output != "order-7 approved by alice with plan-b on 2.0.0" {
		t.Fatalf("order-7: %+v", st)
	}

	// An explicit version, then a cancel of a waiting instance.
	v1 := `{"kind":"Start","execution":1,"name":"billing::approve","version":"1.0.0","input":"order-8"}`
	redisCLI(t, srv, "start.lua", startKeys(p, "order-8", "v:billing::approve@1.0.0"), []string{"order-8", "billing::approve", "1.0.0", "v:billing::approve@1.0.0", v1})
	eventually(t, 10e9, "order-8 running on 1.0.0", func() bool {
		st, _ := e.client.Status(ctx, "order-8")
		return st.State == client.StateRunning && st.Version == "1.0.0"
	})
	redisCLI(t, srv, "raise.lua", []string{p, p + "inst:order-8", p + "inbox:order-8"}, []string{"order-8", `{"kind":"Cancel","reason":"customer withdrew"}`})
	if st := e.wait("order-8"); st.State != client.StateFailed || st.Failure.Error() != "cancelled: customer withdrew" {
		t.Fatalf("order-8: %+v", st.Failure)
	}
	if got := redisCLI(t, srv, "raise.lua", []string{p, p + "inst:order-8", p + "inbox:order-8"}, []string{"order-8", `{"kind":"Cancel"}`}); !strings.Contains(got, "INSTANCE_ENDED") {
		t.Fatalf("raise to an ended instance: %s", got)
	}

	// The documented start writes exactly the fields the Go client writes.
	if err := e.client.Start(ctx, "by-go", "nobody::registered", ""); err != nil {
		t.Fatal(err)
	}
	redisCLI(t, srv, "start.lua", startKeys(p, "by-cli", "o:nobody::registered"), []string{"by-cli", "nobody::registered", "", "o:nobody::registered", `{"kind":"Start","execution":1,"name":"nobody::registered"}`})
	fields := func(id string) string {
		h, _ := e.rdb.HGetAll(ctx, p+"inst:"+id).Result()
		var names []string
		for k := range h {
			names = append(names, k)
		}
		sort.Strings(names)
		return fmt.Sprint(names)
	}
	if a, b := fields("by-go"), fields("by-cli"); a != b {
		t.Fatalf("docs/protocol/start.lua drifted from the client:\n client %s\n script %s", a, b)
	}
	m, err := e.client.GetSystemMetrics(ctx)
	if err != nil || m.Pending != 2 {
		t.Fatalf("metrics after protocol starts: %+v %v", m, err)
	}
	page, err := e.client.ListInstances(ctx, client.ListOptions{Status: client.StatePending})
	if err != nil || len(page.Instances) != 2 || page.Instances[0].InstanceID != "by-go" || page.Instances[1].InstanceID != "by-cli" {
		t.Fatalf("pending instances after protocol starts: %+v %v", page, err)
	}
}

// needRedisCLI skips the test when redis-cli is missing (outside CI).
func needRedisCLI(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs redis-server and redis-cli")
	}
	if _, err := exec.LookPath("redis-cli"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-cli not on PATH (it comes with Debian's redis-server package)")
		}
		t.Skip("redis-cli not on PATH")
	}
}

// TestWireProtocolScriptsRefuseForgedAndInvalidInput: the documented
// scripts deliver only what a producer may send (ExternalEvent, QueueEvent,
// Cancel), refuse invalid UTF-8 and mismatched start messages, replay a
// request id instead of writing twice, and write nothing when an ACL denies
// their PUBLISH.
func TestWireProtocolScriptsRefuseForgedAndInvalidInput(t *testing.T) {
	needRedisCLI(t)
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	p := "{t}:"
	start := func(id, name, msg string, extra ...string) string {
		keys := startKeys(p, id, "o:"+name)
		if len(extra) > 0 {
			keys = append(keys, p+"req:"+extra[0])
		}
		return redisCLI(t, srv, "start.lua", keys, append([]string{id, name, "", "o:" + name, msg}, extra...))
	}
	raise := func(id, msg string, extra ...string) string {
		keys := []string{p, p + "inst:" + id, p + "inbox:" + id}
		if len(extra) > 0 {
			keys = append(keys, p+"req:"+extra[0])
		}
		return redisCLI(t, srv, "raise.lua", keys, append([]string{id, msg}, extra...))
	}
	inboxLen := func(id string) int64 { return rdb.LLen(ctx, p+"inbox:"+id).Val() }

	// A start named with a request id can be resent; without it, a resend is INSTANCE_EXISTS.
	msg := `{"kind":"Start","execution":1,"name":"billing::approve","input":"<b>&</b>"}`
	for run := 1; run <= 2; run++ {
		if got := start("p1", "billing::approve", msg, "req-start-1"); got != "1" {
			t.Fatalf("start with a request id, run %d: %s", run, got)
		}
	}
	if got := start("p1", "billing::approve", msg); !strings.Contains(got, "INSTANCE_EXISTS") {
		t.Fatalf("start without a request id: %s", got)
	}
	if got := start("p9", "billing::approve", strings.Replace(msg, "p1", "p9", 1), "req-start-1"); !strings.Contains(got, "REQUEST_REUSED") {
		t.Fatalf("request id reused for another instance: %s", got)
	}

	// Forged kinds, and fields the Go decoder would match without regard to case.
	for _, forged := range []string{
		`{"kind":"TimerFired","execution":1,"event_id":2,"fire_at":1}`,
		`{"kind":"ActivityCompleted","execution":1,"event_id":2,"result":"x"}`,
		`{"kind":"ActivityFailed","execution":1,"event_id":2,"error":{"category":"application","kind":"activity_failed","message":"x"}}`,
		`{"kind":"SubOrchestrationCompleted","execution":1,"event_id":2,"result":"x"}`,
		`{"kind":"Start","execution":1,"name":"other"}`,
		`{"kind":"ContinueAsNew","execution":2,"name":"other"}`,
		`{"kind":"Cancel","KIND":"TimerFired","execution":1,"event_id":2}`,
		`{"kind":"ExternalEvent","name":"approve","Kind":"ActivityCompleted"}`,
		`{"kind":"ExternalEvent","name":"approve","event_id":2}`,
		`{"kind":"ExternalEvent","result":"no name"}`,
		`["ExternalEvent"]`,
		`not json`,
	} {
		if got := raise("p1", forged); !strings.Contains(got, "INVALID_INPUT") {
			t.Errorf("raise.lua delivered %s: %s", forged, got)
		}
	}
	if n := inboxLen("p1"); n != 1 {
		t.Fatalf("inbox of p1 has %d messages after refused deliveries, want 1", n)
	}
	if name := rdb.HGet(ctx, p+"inst:p1", "name").Val(); name != "billing::approve" {
		t.Fatalf("instance name changed to %q", name)
	}

	// Invalid UTF-8 anywhere is refused; nothing is written.
	if got := raise("p1", "{\"kind\":\"ExternalEvent\",\"name\":\"approve\",\"result\":\"\xff\"}"); !strings.Contains(got, "not valid UTF-8") {
		t.Errorf("raise with invalid UTF-8: %s", got)
	}
	if got := start("p2", "billing::approve", "{\"kind\":\"Start\",\"name\":\"billing::approve\",\"input\":\"\xc3\x28\"}"); !strings.Contains(got, "not valid UTF-8") {
		t.Errorf("start with invalid UTF-8 input: %s", got)
	}
	if got := start("p2\xff", "billing::approve", `{"kind":"Start","name":"billing::approve"}`); !strings.Contains(got, "not valid UTF-8") {
		t.Errorf("start with an invalid UTF-8 id: %s", got)
	}
	// A start message that disagrees with the arguments, or a reserved name.
	if got := start("p2", "billing::approve", `{"kind":"Start","name":"other"}`); !strings.Contains(got, "INVALID_INPUT") {
		t.Errorf("start whose message names another orchestration: %s", got)
	}
	if got := start("p2", "billing::approve", `{"kind":"ExternalEvent","name":"billing::approve"}`); !strings.Contains(got, "INVALID_INPUT") {
		t.Errorf("start with a message that is not a Start: %s", got)
	}
	if got := start("p2", "__duroworker:x", `{"kind":"Start","name":"__duroworker:x"}`); !strings.Contains(got, "INVALID_INPUT") {
		t.Errorf("start of a reserved name: %s", got)
	}
	if n := rdb.Exists(ctx, p+"inst:p2", p+"inbox:p2").Val(); n != 0 {
		t.Fatalf("refused starts wrote %d keys of p2", n)
	}

	// A delivery named with a request id is delivered once however often it runs.
	for run := 1; run <= 2; run++ {
		if got := raise("p1", `{"kind":"ExternalEvent","name":"approve","result":"<yes>"}`, "req-raise-1"); got != "1" {
			t.Fatalf("raise with a request id, run %d: %s", run, got)
		}
	}
	if got := raise("p1", `{"kind":"QueueEvent","name":"config","result":"v2"}`); got != "1" {
		t.Fatalf("raise of a queue event: %s", got)
	}
	if n := inboxLen("p1"); n != 3 {
		t.Fatalf("inbox of p1 has %d messages, want 3 (start, one event, one queue message)", n)
	}

	// Under an ACL without channel permissions, the scripts fail before writing.
	if err := rdb.Do(ctx, "ACL", "SETUSER", "producer", "on", ">pw", "~{t}:*", "resetchannels", "+@all").Err(); err != nil {
		t.Fatal(err)
	}
	host, port, _ := strings.Cut(srv.Addr(), ":")
	asProducer := func(script string, keys, args []string) string {
		cmdArgs := append([]string{"-h", host, "-p", port, "--user", "producer", "--pass", "pw", "--no-auth-warning",
			"--eval", filepath.Join("..", "docs", "protocol", script)}, keys...)
		out, _ := exec.Command("redis-cli", append(append(cmdArgs, ","), args...)...).CombinedOutput()
		return strings.TrimSpace(string(out))
	}
	got := asProducer("start.lua", startKeys(p, "p3", "o:billing::approve"),
		[]string{"p3", "billing::approve", "", "o:billing::approve", `{"kind":"Start","name":"billing::approve"}`})
	if !strings.Contains(got, "channel") {
		t.Fatalf("start without channel permission: %s", got)
	}
	if n := rdb.Exists(ctx, p+"inst:p3", p+"inbox:p3").Val(); n != 0 {
		t.Fatalf("a denied start wrote %d keys", n)
	}
	got = asProducer("raise.lua", []string{p, p + "inst:p1", p + "inbox:p1"}, []string{"p1", `{"kind":"Cancel"}`})
	if !strings.Contains(got, "channel") {
		t.Fatalf("raise without channel permission: %s", got)
	}
	if n := inboxLen("p1"); n != 3 {
		t.Fatalf("a denied raise changed the inbox to %d messages", n)
	}
}

// TestWireProtocolUTF8CheckMatchesGo runs the UTF-8 check of raise.lua on
// random and edge-case byte strings and compares it with utf8.ValidString.
func TestWireProtocolUTF8CheckMatchesGo(t *testing.T) {
	if testing.Short() {
		t.Skip("needs redis-server")
	}
	src, err := os.ReadFile(filepath.Join("..", "docs", "protocol", "raise.lua"))
	if err != nil {
		t.Fatal(err)
	}
	script := redis.NewScript(string(src))
	rdb := redistest.Start(t).Client(t)
	ctx := context.Background()
	samples := []string{"", "plain", "é", "€", "𝄞", "\xc0\x80", "\xc1\xbf", "\xe0\x80\xaf", "\xe0\xa0\x80", "\xed\x9f\xbf",
		"\xed\xa0\x80", "\xed\xbf\xbf", "\xee\x80\x80", "\xef\xbf\xbf", "\xf0\x8f\xbf\xbf", "\xf0\x90\x80\x80",
		"\xf4\x8f\xbf\xbf", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xff", "\x80", "\xc2", "\xe2\x82", "\xe2\x82\xac\xac",
		"\xe1\xc2\x80", "\xe0\xc2\x80\xa0\x80", "a\xf0\x9d\x84\x9eb\xf0\x9d\x84"}
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte{'a', 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xdf, 0xe0, 0xe1, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf4, 0xf5, 0xff}
	for range 3000 {
		b := make([]byte, rng.IntN(8))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		samples = append(samples, string(b))
	}
	for _, s := range samples {
		msg := `{"kind":"Cancel","reason":"` + s + `"}`
		err := script.Run(ctx, rdb, []string{"{u}:", "{u}:inst:x", "{u}:inbox:x"}, "x", msg).Err()
		refused := err != nil && strings.Contains(err.Error(), "not valid UTF-8")
		if refused == utf8.ValidString(msg) {
			t.Errorf("%q: refused by raise.lua = %v, utf8.ValidString = %v (%v)", s, refused, utf8.ValidString(msg), err)
		}
	}
}
