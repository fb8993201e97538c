package chaos

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Fault kinds, in the order one round injects them.
const (
	faultWorkerKill   = "worker-sigkill"
	faultWorkerStop   = "worker-sigstop"
	faultWorkerTerm   = "worker-sigterm"
	faultRedisKill    = "redis-sigkill"
	faultScriptFlush  = "script-flush"
	faultClientKill   = "client-kill"
	faultDropReplies  = "proxy-drop-replies"
	faultBlackhole    = "proxy-blackhole"
	faultReset        = "proxy-reset"
	faultRedisFreeze  = "redis-freeze"
	faultRedisOOM     = "redis-oom"
	workerFaultPrefix = "worker-"
)

// allFaults is every fault kind the suite knows.
var allFaults = []string{
	faultWorkerKill, faultRedisKill, faultDropReplies, faultWorkerStop, faultScriptFlush,
	faultBlackhole, faultWorkerTerm, faultClientKill, faultRedisFreeze, faultReset, faultRedisOOM,
}

// config sizes one run of TestChaos.
type config struct {
	// Instances is the number of root instances (children not counted).
	Instances int
	// InFlight bounds the root instances started and not yet ended.
	InFlight int
	// Workers is the number of worker processes.
	Workers int
	// Faults are the fault kinds, injected in this order, Rounds times.
	Faults []string
	Rounds int
	// FaultFor is how long a fault with a duration lasts (blackhole, freeze,
	// dropped replies, out of memory); SIGSTOP lasts past the lock timeouts.
	FaultFor time.Duration
	// Gap is the quiet time after each fault.
	Gap time.Duration
	// Worker lock and liveness settings.
	ActivityLock, OrchLock, SessionLock, Heartbeat time.Duration
	// SessionIdle and MaxSessions are the workers' Sessions.IdleTimeout and
	// Sessions.MaxSessions. Every Session instance uses a session of its
	// own, and a session stays pinned until it has been idle for SessionIdle:
	// MaxSessions must cover the sessions pinned meanwhile, or the workers
	// stop taking new sessions until some go idle (the work queued behind
	// them still runs; see docs/operations.md).
	SessionIdle time.Duration
	MaxSessions int
	// Drain bounds how long instances may take to end after the last fault.
	Drain time.Duration
}

// loadConfig returns the short or the full configuration, with the
// environment overrides DUROWORKER_CHAOS_INSTANCES, DUROWORKER_CHAOS_WORKERS,
// DUROWORKER_CHAOS_ROUNDS, DUROWORKER_CHAOS_MAX_SESSIONS, the durations
// DUROWORKER_CHAOS_DRAIN and DUROWORKER_CHAOS_SESSION_IDLE, and
// DUROWORKER_CHAOS_FAULTS (a comma-separated list of kinds, "all" or "none").
func loadConfig(t *testing.T) config {
	t.Helper()
	cfg := config{
		Instances: 240, InFlight: 60, Workers: 2, Rounds: 1,
		Faults:   []string{faultWorkerKill, faultRedisKill, faultDropReplies, faultClientKill},
		FaultFor: 2 * time.Second, Gap: 1500 * time.Millisecond,
		ActivityLock: 3 * time.Second, OrchLock: 2 * time.Second, SessionLock: 6 * time.Second,
		Heartbeat: time.Second, Drain: 2 * time.Minute,
		SessionIdle: 5 * time.Second, MaxSessions: 200,
	}
	if fullSize {
		cfg = config{
			Instances: 10000, InFlight: 300, Workers: 3, Rounds: 3,
			Faults:   allFaults,
			FaultFor: 4 * time.Second, Gap: 4 * time.Second,
			ActivityLock: 10 * time.Second, OrchLock: 5 * time.Second, SessionLock: 15 * time.Second,
			Heartbeat: time.Second, Drain: 15 * time.Minute,
			SessionIdle: 20 * time.Second, MaxSessions: 200,
		}
	}
	envInt := func(name string, dst *int) {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				t.Fatalf("%s=%q: want a positive number", name, v)
			}
			*dst = n
		}
	}
	envInt("DUROWORKER_CHAOS_INSTANCES", &cfg.Instances)
	envInt("DUROWORKER_CHAOS_WORKERS", &cfg.Workers)
	envInt("DUROWORKER_CHAOS_ROUNDS", &cfg.Rounds)
	envInt("DUROWORKER_CHAOS_MAX_SESSIONS", &cfg.MaxSessions)
	envDur := func(name string, dst *time.Duration) {
		if v := os.Getenv(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				t.Fatalf("%s=%q: want a positive duration", name, v)
			}
			*dst = d
		}
	}
	envDur("DUROWORKER_CHAOS_DRAIN", &cfg.Drain)
	envDur("DUROWORKER_CHAOS_SESSION_IDLE", &cfg.SessionIdle)
	if v := os.Getenv("DUROWORKER_CHAOS_FAULTS"); v != "" {
		cfg.Faults = nil
		if v == "all" {
			cfg.Faults = allFaults
		} else {
			for _, k := range strings.Split(v, ",") {
				k = strings.TrimSpace(k)
				if !slices.Contains(allFaults, k) && k != "none" {
					t.Fatalf("DUROWORKER_CHAOS_FAULTS: unknown fault kind %q (known: %s)", k, strings.Join(allFaults, ", "))
				}
				if k != "none" {
					cfg.Faults = append(cfg.Faults, k)
				}
			}
		}
	}
	cfg.InFlight = min(cfg.InFlight, cfg.Instances)
	return cfg
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// buildWorker builds tests/chaos/chaosworker once per test binary, with
// -race when this test binary has it.
func buildWorker(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "chaosworker")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "chaosworker")
		args := []string{"build"}
		if raceEnabled {
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, "-o", binPath, "./chaosworker")...).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./chaosworker: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// workerProc is one run of a worker process.
type workerProc struct {
	node    string
	cmd     *exec.Cmd
	done    chan struct{}
	stderr  string // path of its stderr
	records string // path of its records file
}

// startWorker starts a worker process with node id node and waits until it
// says ready.
func (h *harness) startWorker(node string) *workerProc {
	h.t.Helper()
	h.mu.Lock()
	h.gen++
	gen := h.gen
	h.mu.Unlock()
	base := filepath.Join(h.dir, fmt.Sprintf("%s.g%d", node, gen))
	w := &workerProc{node: node, done: make(chan struct{}), stderr: base + ".stderr", records: base + ".records"}
	errf, err := os.Create(w.stderr)
	if err != nil {
		h.t.Fatal(err)
	}
	w.cmd = exec.Command(h.bin,
		"-redis", h.proxy.Addr(), "-prefix", prefix, "-node", node, "-records", w.records,
		"-activity-lock", h.cfg.ActivityLock.String(), "-orch-lock", h.cfg.OrchLock.String(),
		"-session-lock", h.cfg.SessionLock.String(), "-heartbeat", h.cfg.Heartbeat.String(),
		"-session-idle", h.cfg.SessionIdle.String(), "-max-sessions", strconv.Itoa(h.cfg.MaxSessions))
	w.cmd.Stderr = errf
	stdout, err := w.cmd.StdoutPipe()
	if err != nil {
		h.t.Fatal(err)
	}
	if err := w.cmd.Start(); err != nil {
		h.t.Fatalf("starting worker %s: %v", node, err)
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		ready <- sc.Scan() && sc.Text() == "ready"
		for sc.Scan() {
		}
		_ = w.cmd.Wait()
		_ = errf.Close()
		close(w.done)
	}()
	select {
	case ok := <-ready:
		if !ok {
			h.t.Fatalf("worker %s exited before it was ready; stderr: %s", node, tail(w.stderr))
		}
	case <-time.After(60 * time.Second):
		h.t.Fatalf("worker %s not ready after 60s; stderr: %s", node, tail(w.stderr))
	}
	h.mu.Lock()
	h.procs = append(h.procs, w)
	h.mu.Unlock()
	return w
}

// signal sends sig to the process (errors mean it is gone already).
func (w *workerProc) signal(sig syscall.Signal) { _ = w.cmd.Process.Signal(sig) }

// kill SIGKILLs the process and waits for it.
func (w *workerProc) kill() {
	w.signal(syscall.SIGKILL)
	<-w.done
}

// terminate sends SIGTERM and waits for the graceful shutdown; it reports
// false when the process did not exit within limit (it is killed then).
func (w *workerProc) terminate(limit time.Duration) bool {
	w.signal(syscall.SIGTERM)
	select {
	case <-w.done:
		return true
	case <-time.After(limit):
		w.kill()
		return false
	}
}

// tail returns the end of a file, for failure messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}
