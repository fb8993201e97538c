package tests

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/internal/redistest"
	"github.com/duroworker/duroworker/queue"
)

var (
	workerProcOnce sync.Once
	workerProcPath string
	workerProcErr  error
)

// buildWorkerProc builds tests/workerproc once per test binary.
func buildWorkerProc(t *testing.T) string {
	t.Helper()
	workerProcOnce.Do(func() {
		dir, err := os.MkdirTemp("", "workerproc")
		if err != nil {
			workerProcErr = err
			return
		}
		workerProcPath = filepath.Join(dir, "workerproc")
		out, err := exec.Command("go", "build", "-race", "-o", workerProcPath, "./workerproc").CombinedOutput()
		if err != nil {
			workerProcErr = fmt.Errorf("go build ./workerproc: %v\n%s", err, out)
		}
	})
	if workerProcErr != nil {
		t.Fatal(workerProcErr)
	}
	return workerProcPath
}

// proc is one worker process.
type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

func startProc(t *testing.T, srv *redistest.Server, prefix, node string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(buildWorkerProc(t), append([]string{"-redis", srv.Addr(), "-prefix", prefix, "-node", node}, args...)...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, name: node, cmd: cmd, done: make(chan struct{})}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		ok := sc.Scan() && sc.Text() == "ready"
		ready <- ok
		for sc.Scan() {
		}
		_ = cmd.Wait()
		close(p.done)
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatalf("worker process %s did not start", node)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("worker process %s not ready after 30s", node)
	}
	t.Cleanup(p.kill)
	return p
}

// kill sends SIGKILL: no cleanup, no lock release, like a crash.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM and waits for the graceful shutdown.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.t.Errorf("worker process %s did not stop within 20s of SIGTERM", p.name)
		p.kill()
	}
}

// killedMidActivity is a redis-server whose namespace prefix had worker
// process node-a SIGKILLed while it ran instance "slow"'s activity.
type killedMidActivity struct {
	srv    *redistest.Server
	rdb    *redis.Client
	store  *queue.Store
	client *client.Client
	prefix string
	killed time.Time // just after the activity's lock was taken
}

// killMidActivity starts node-a with activity lock lock, starts "slow"
// (sleeping sleep), and kills node-a once the activity runs.
func killMidActivity(t *testing.T, prefix string, lock time.Duration, sleep string) *killedMidActivity {
	t.Helper()
	k := &killedMidActivity{srv: redistest.Start(t), prefix: prefix}
	k.rdb = k.srv.Client(t)
	k.store = queue.New(k.rdb, queue.Options{Prefix: prefix})
	k.client = client.New(k.store)
	t.Cleanup(func() { _ = k.client.Close() })
	a := startProc(t, k.srv, prefix, "node-a", "-activity-lock", lock.String())
	ctx := context.Background()
	if err := k.client.Start(ctx, "slow", "Slow", sleep); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "activity started on node-a", func() bool {
		return len(k.runs(t)) == 1
	})
	k.killed = time.Now()
	a.kill()
	return k
}

// runs lists the activity runs, "<node>:<instance>:<attempt>" each.
func (k *killedMidActivity) runs(t *testing.T) []string {
	t.Helper()
	got, _ := k.rdb.LRange(context.Background(), "{"+k.prefix+"}:test:runs", 0, -1).Result()
	return got
}

// TestSIGKILLMidActivityRedelivers kills a worker process while its activity
// runs: after the activity's lock expires another process runs it again
// (attempt 2) and the orchestration completes.
func TestSIGKILLMidActivityRedelivers(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	k := killMidActivity(t, "kill", time.Second, "2s")
	startProc(t, k.srv, "kill", "node-b", "-activity-lock", "1s")
	wctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := k.client.Wait(wctx, "slow")
	if err != nil || st.State != client.StateCompleted || st.Output != "slept 2s on node-b" {
		t.Fatalf("%+v %v", st, err)
	}
	if got := k.runs(t); strings.Join(got, " ") != "node-a:slow:1 node-b:slow:2" {
		t.Fatalf("activity runs %v: want node-a attempt 1, then node-b attempt 2", got)
	}
}

// TestRollingUpgradeOfThreeProcesses restarts three worker processes one at
// a time with a new orchestration version registered while instances loop
// through continue-as-new: no instance fails, and once an instance has run
// the new version it never runs the old one again.
func TestRollingUpgradeOfThreeProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	store := queue.New(rdb, queue.Options{Prefix: "roll"})
	c := client.New(store)
	defer c.Close()
	ctx := context.Background()

	// Each instance loops through 8 rounds of a 2 s durable timer, so it
	// outlasts the rollout (three graceful stops and starts) even on a
	// loaded machine. With 400 ms rounds the old nodes could finish every
	// instance before the first upgraded node was ready (4 of 8 runs
	// failed so with two busy loops on 2 cores).
	const round = "2s"
	nodes := []*proc{
		startProc(t, srv, "roll", "n1", "-versions", "1.0.0", "-loop-timer", round),
		startProc(t, srv, "roll", "n2", "-versions", "1.0.0", "-loop-timer", round),
		startProc(t, srv, "roll", "n3", "-versions", "1.0.0", "-loop-timer", round),
	}
	const n = 20
	for i := 0; i < n; i++ {
		if err := c.Start(ctx, fmt.Sprint("loop-", i), "Loop", "v:"); err != nil {
			t.Fatal(err)
		}
	}
	for i, p := range nodes {
		time.Sleep(400 * time.Millisecond)
		p.stop()
		nodes[i] = startProc(t, srv, "roll", fmt.Sprintf("n%d-v2", i+1), "-versions", "1.0.0,2.0.0", "-loop-timer", round)
	}
	upgraded := 0
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprint("loop-", i)
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for st, err := range c.WaitMany(wctx, ids) {
		if err != nil || st.State != client.StateCompleted {
			t.Fatalf("%s: %+v %v", st.InstanceID, st, err)
		}
		versions := strings.Fields(st.Output)[1:]
		seenNew := false
		for _, v := range versions {
			switch {
			case v == "2.0.0":
				seenNew = true
			case seenNew:
				t.Fatalf("%s ran %s after 2.0.0: %q", st.InstanceID, v, st.Output)
			}
		}
		if seenNew {
			upgraded++
		}
		info, _ := c.GetInstanceInfo(ctx, st.InstanceID)
		if info.OrchestrationVersion != versions[len(versions)-1] {
			t.Fatalf("%s: instance reports %s, last execution ran %s", st.InstanceID, info.OrchestrationVersion, versions[len(versions)-1])
		}
	}
	t.Logf("%d of %d instances upgraded to 2.0.0 at a continue-as-new", upgraded, n)
	if upgraded == 0 {
		t.Fatal("no instance upgraded: the upgraded nodes never started an execution")
	}
}
