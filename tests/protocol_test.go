package tests

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

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
	return []string{p, p + "inst:" + id, p + "inbox:" + id, p + "ready:" + bucket, p + "buckets:o", p + "instances", p + "stats", p + "seq"}
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
}
