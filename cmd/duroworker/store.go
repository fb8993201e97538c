package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Store kinds accepted by --store.
const (
	storeAuto        = "auto"
	storeRedisServer = "redis-server"
	storeMiniredis   = "miniredis"
)

// redisServerBinary is the program started for --store redis-server.
const redisServerBinary = "redis-server"

// embeddedStore is the Redis that `duroworker dev` runs for itself.
type embeddedStore struct {
	// Addr is the host:port to connect to.
	Addr string
	// Description says what runs, for the "store:" line.
	Description string
	// PID is the redis-server child's process id, 0 for miniredis.
	PID int

	mini  *miniredis.Miniredis
	child *redisChild
	once  sync.Once
}

// startStore starts the store kind asks for: auto prefers redis-server and
// falls back to miniredis. note receives what happened on a fallback.
func startStore(ctx context.Context, kind string, note func(string)) (*embeddedStore, error) {
	switch kind {
	case storeMiniredis:
		return startMiniredis("--store miniredis")
	case storeRedisServer:
		path, err := exec.LookPath(redisServerBinary)
		if err != nil {
			return nil, fmt.Errorf("--store redis-server: %s not found on PATH", redisServerBinary)
		}
		return startRedisServer(ctx, path)
	case storeAuto, "":
		path, err := exec.LookPath(redisServerBinary)
		if err != nil {
			return startMiniredis(redisServerBinary + " not found on PATH")
		}
		s, err := startRedisServer(ctx, path)
		if err == nil {
			return s, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		note(fmt.Sprintf("could not start %s (%v); falling back to miniredis", path, err))
		return startMiniredis(redisServerBinary + " failed to start")
	default:
		return nil, fmt.Errorf("--store %q: want %s, %s or %s", kind, storeAuto, storeRedisServer, storeMiniredis)
	}
}

func startMiniredis(why string) (*embeddedStore, error) {
	m := miniredis.NewMiniRedis()
	if err := m.Start(); err != nil {
		return nil, fmt.Errorf("starting miniredis: %w", err)
	}
	return &embeddedStore{
		Addr:        m.Addr(),
		Description: fmt.Sprintf("in-process miniredis (%s) at %s", why, m.Addr()),
		mini:        m,
	}, nil
}

// Close stops the store: miniredis is closed; the redis-server child gets
// SIGTERM, then SIGKILL after 5 seconds, and its directory is removed. It is
// safe to call more than once.
func (s *embeddedStore) Close() error {
	var err error
	s.once.Do(func() {
		if s.mini != nil {
			s.mini.Close()
		}
		if s.child != nil {
			err = s.child.stop(5 * time.Second)
		}
	})
	return err
}

// Kill stops a redis-server child at once with SIGKILL and removes its
// directory, for a forced exit.
func (s *embeddedStore) Kill() {
	if s.child != nil {
		_ = s.child.cmd.Process.Kill()
		select {
		case <-s.child.exited:
		case <-time.After(time.Second):
		}
		_ = os.RemoveAll(s.child.dir)
	}
}

// redisChild is a redis-server process started by dev.
type redisChild struct {
	cmd    *exec.Cmd
	dir    string
	exited chan struct{} // closed when the process has been waited for
	output *boundedBuffer
}

// startRedisServer starts path on a free loopback port in a new temporary
// directory, with persistence off, and waits until it answers PING. A port
// taken between choosing and binding it is retried with another one.
func startRedisServer(ctx context.Context, path string) (*embeddedStore, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		child, err := spawnRedis(path, port)
		if err != nil {
			return nil, err
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		version, err := child.waitReady(ctx, addr, 5*time.Second)
		if err == nil {
			return &embeddedStore{
				Addr:        addr,
				Description: fmt.Sprintf("redis-server %s (child pid %d) at %s", version, child.cmd.Process.Pid, addr),
				PID:         child.cmd.Process.Pid,
				child:       child,
			}, nil
		}
		_ = child.stop(time.Second)
		lastErr = err
		if ctx.Err() != nil || !strings.Contains(child.output.String(), "Address already in use") {
			break
		}
	}
	return nil, lastErr
}

func spawnRedis(path string, port int) (*redisChild, error) {
	dir, err := os.MkdirTemp("", "duroworker-dev-redis-*")
	if err != nil {
		return nil, fmt.Errorf("temp dir for redis-server: %w", err)
	}
	cmd := exec.Command(path,
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", dir,
	)
	out := &boundedBuffer{max: 64 << 10}
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.Dir = dir
	configureChild(cmd)
	if err := cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("starting %s: %w", path, err)
	}
	c := &redisChild{cmd: cmd, dir: dir, exited: make(chan struct{}), output: out}
	go func() {
		_ = cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

// waitReady pings addr until it answers, the child exits, or timeout
// passes, and returns the server's version.
func (c *redisChild) waitReady(ctx context.Context, addr string, timeout time.Duration) (string, error) {
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer rdb.Close()
	deadline := time.Now().Add(timeout)
	for {
		pctx, cancel := context.WithTimeout(ctx, 250*time.Millisecond)
		err := rdb.Ping(pctx).Err()
		cancel()
		if err == nil {
			return serverVersion(ctx, rdb), nil
		}
		select {
		case <-c.exited:
			return "", fmt.Errorf("redis-server exited before answering PING: %s", lastLines(c.output.String(), 5))
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("redis-server did not answer PING on %s within %s: %v", addr, timeout, err)
		}
	}
}

// stop sends SIGTERM to the child, SIGKILL if it has not exited after
// grace, waits for it and removes its directory.
func (c *redisChild) stop(grace time.Duration) error {
	var err error
	select {
	case <-c.exited:
	default:
		if serr := c.cmd.Process.Signal(syscall.SIGTERM); serr != nil && !errors.Is(serr, os.ErrProcessDone) {
			err = fmt.Errorf("SIGTERM to redis-server pid %d: %w", c.cmd.Process.Pid, serr)
		}
		select {
		case <-c.exited:
		case <-time.After(grace):
			_ = c.cmd.Process.Kill()
			<-c.exited
			err = fmt.Errorf("redis-server pid %d did not exit within %s of SIGTERM; killed", c.cmd.Process.Pid, grace)
		}
	}
	if rerr := os.RemoveAll(c.dir); rerr != nil && err == nil {
		err = rerr
	}
	return err
}

func serverVersion(ctx context.Context, rdb *redis.Client) string {
	info, err := rdb.Info(ctx, "server").Result()
	if err != nil {
		return "(version unknown)"
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			return v
		}
	}
	return "(version unknown)"
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// boundedBuffer keeps the first max bytes written to it, for diagnostics of
// a child process. It is safe for concurrent use.
type boundedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *boundedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
