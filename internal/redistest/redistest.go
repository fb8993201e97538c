// Package redistest starts Redis servers for tests: a real redis-server
// process on a loopback port (for behaviour miniredis does not reproduce, such
// as the script cache being lost, AOF persistence and restarts) and an
// in-process miniredis (for fast unit tests with a controllable clock).
//
// Tests that need a real server are skipped when redis-server is not on PATH,
// except when the environment variable CI is "true": there a missing
// redis-server fails the test.
package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Binary is the name of the Redis server executable looked up on PATH.
const Binary = "redis-server"

const (
	// startAttempts bounds how often Start retries with a new port after the
	// server failed to come up (typically because the port was taken between
	// choosing it and binding it).
	startAttempts = 5
	// readyTimeout bounds how long Start waits for PING to answer.
	readyTimeout = 10 * time.Second
	// stopGrace is how long Stop waits after SIGTERM before sending SIGKILL.
	stopGrace = 5 * time.Second
)

// Config configures a real redis-server started by StartWith. The zero value
// is what Start uses: no RDB snapshots and no AOF.
type Config struct {
	// AppendOnly turns on the append-only file (appendonly yes), so data
	// survives Restart.
	AppendOnly bool
	// AppendFsync is the appendfsync policy ("always", "everysec" or "no").
	// If empty, the server default (everysec) applies. It only matters when
	// AppendOnly is set.
	AppendFsync string
	// Args are extra command-line arguments appended after the defaults, for
	// example []string{"--maxmemory", "10mb"}.
	Args []string
}

// Server is a redis-server process owned by one test. It listens on
// 127.0.0.1 and keeps its files in a temporary directory of the test. Its
// methods are safe for use by one goroutine at a time.
type Server struct {
	cfg  Config
	dir  string
	port int

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has been waited for
}

// Start starts a redis-server with the default Config on a free loopback
// port and registers a cleanup that stops it. It skips the test when
// redis-server is not installed (and fails it when CI=true).
func Start(tb testing.TB) *Server {
	tb.Helper()
	return StartWith(tb, Config{})
}

// StartWith is Start with an explicit Config.
func StartWith(tb testing.TB, cfg Config) *Server {
	tb.Helper()
	requireBinary(tb)
	s := &Server{cfg: cfg, dir: tb.TempDir()}
	var lastErr error
	for range startAttempts {
		port, err := freePort()
		if err != nil {
			lastErr = err
			continue
		}
		s.port = port
		if lastErr = s.start(); lastErr == nil {
			tb.Cleanup(func() { s.stop(tb) })
			return s
		}
	}
	tb.Fatalf("redistest: starting %s: %v", Binary, lastErr)
	return nil
}

// requireBinary skips (or, with CI=true, fails) the test when redis-server
// is not on PATH.
func requireBinary(tb testing.TB) {
	tb.Helper()
	if _, err := exec.LookPath(Binary); err != nil {
		msg := fmt.Sprintf("redistest: %s not found on PATH (%v); install Redis >= 7.0 to run tests against a real server", Binary, err)
		if os.Getenv("CI") == "true" {
			tb.Fatal(msg + " (CI=true: a missing redis-server is a failure)")
		}
		tb.Skip(msg)
	}
}

// freePort asks the kernel for a free loopback TCP port. The port is released
// before redis-server binds it, so another process can take it in between;
// callers retry on failure.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("releasing port %d: %w", port, err)
	}
	return port, nil
}

// args returns the redis-server command line.
func (s *Server) args() []string {
	args := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--save", "",
		"--daemonize", "no",
		"--logfile", filepath.Join(s.dir, "redis.log"),
	}
	if s.cfg.AppendOnly {
		args = append(args, "--appendonly", "yes")
		if s.cfg.AppendFsync != "" {
			args = append(args, "--appendfsync", s.cfg.AppendFsync)
		}
	} else {
		args = append(args, "--appendonly", "no")
	}
	return append(args, s.cfg.Args...)
}

// start launches the process and waits until it answers PING. On failure
// the process is gone when start returns.
func (s *Server) start() error {
	cmd := exec.Command(Binary, s.args()...)
	cmd.Dir = s.dir
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("running %s: %w", Binary, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait() // the exit status of a stopped server is not interesting
		close(done)
	}()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()

	if err := s.waitReady(done); err != nil {
		s.kill()
		return fmt.Errorf("%w (port %d; log: %s)", err, s.port, s.logTail())
	}
	return nil
}

// waitReady polls PING until it answers, the process exits or readyTimeout
// passes.
func (s *Server) waitReady(done <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1, DialTimeout: time.Second})
	defer func() { _ = rdb.Close() }()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := rdb.Ping(ctx).Err(); err == nil {
			return nil
		}
		select {
		case <-done:
			return errors.New("redis-server exited during start-up")
		case <-ctx.Done():
			return errors.New("redis-server did not answer PING in time")
		case <-tick.C:
		}
	}
}

// logTail returns the last lines of the server log, for error messages.
func (s *Server) logTail() string {
	b, err := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.Join(lines, " | ")
}

// kill stops the process: SIGTERM, then SIGKILL after stopGrace. It reports
// an error only when the process could not be stopped at all.
func (s *Server) kill() error {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd, s.done = nil, nil
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	default:
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("sending SIGTERM to pid %d: %w", cmd.Process.Pid, err)
	}
	select {
	case <-done:
		return nil
	case <-time.After(stopGrace):
	}
	if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("sending SIGKILL to pid %d: %w", cmd.Process.Pid, err)
	}
	<-done
	return nil
}

func (s *Server) stop(tb testing.TB) {
	if err := s.kill(); err != nil {
		tb.Errorf("redistest: stopping server: %v", err)
	}
}

// Addr returns the server address as host:port.
func (s *Server) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// URL returns the server address as a redis:// URL for redis.ParseURL.
func (s *Server) URL() string {
	return "redis://" + s.Addr()
}

// Pid returns the process id of the running server, or 0 when it is stopped.
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Client returns a new client connected to the server; it is closed when the
// test ends. The client reconnects on its own after Restart.
func (s *Server) Client(tb testing.TB) *redis.Client {
	tb.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr()})
	tb.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// Stop stops the server (SIGTERM, then SIGKILL after 5 s). Stopping a stopped
// server does nothing. The test's cleanup stops it anyway; call Stop to test
// behaviour while Redis is down.
func (s *Server) Stop(tb testing.TB) {
	tb.Helper()
	s.stop(tb)
}

// Restart stops the server and starts it again on the same port and
// directory. With Config.AppendOnly the data survives; the script cache never
// does. It retries for a short while if the port is briefly unavailable.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.stop(tb)
	var err error
	for i := range startAttempts {
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(time.Duration(i+1) * 100 * time.Millisecond)
	}
	tb.Fatalf("redistest: restarting %s on port %d: %v", Binary, s.port, err)
}

// StartMini starts an in-process miniredis and returns it with a client
// connected to it; both are closed when the test ends. Use Miniredis.SetTime
// to control the clock that Lua's redis.call('TIME') sees.
func StartMini(tb testing.TB) (*miniredis.Miniredis, *redis.Client) {
	tb.Helper()
	m := miniredis.RunT(tb)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	tb.Cleanup(func() { _ = rdb.Close() })
	return m, rdb
}

// Backend describes the server a ForEachBackend subtest runs against.
type Backend struct {
	// Name is the subtest name: "miniredis" or "redis".
	Name string
	// Real is true for a real redis-server process.
	Real bool
	// Mini is the miniredis instance (nil when Real), for SetTime and
	// inspection.
	Mini *miniredis.Miniredis
	// Server is the redis-server process (nil unless Real), for Restart and
	// Stop.
	Server *Server
}

// ForEachBackend runs fn as two subtests, "miniredis" and "redis", each with
// a fresh, empty server. The "redis" subtest is skipped when redis-server is
// not installed (and fails when CI=true).
func ForEachBackend(t *testing.T, fn func(t *testing.T, rdb *redis.Client, b Backend)) {
	t.Helper()
	t.Run("miniredis", func(t *testing.T) {
		m, rdb := StartMini(t)
		fn(t, rdb, Backend{Name: "miniredis", Mini: m})
	})
	t.Run("redis", func(t *testing.T) {
		srv := Start(t)
		fn(t, srv.Client(t), Backend{Name: "redis", Real: true, Server: srv})
	})
}
