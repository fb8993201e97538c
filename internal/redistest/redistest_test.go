package redistest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestStartAnswersAndStops(t *testing.T) {
	srv := Start(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("ping: %v", err)
	}
	if got := srv.URL(); got != "redis://"+srv.Addr() {
		t.Errorf("URL() = %q, want redis://%s", got, srv.Addr())
	}
	if _, err := redis.ParseURL(srv.URL()); err != nil {
		t.Errorf("ParseURL(%q): %v", srv.URL(), err)
	}
	// Defaults: no persistence at all.
	cfg, err := rdb.ConfigGet(ctx, "appendonly").Result()
	if err != nil {
		t.Fatalf("config get: %v", err)
	}
	if cfg["appendonly"] != "no" {
		t.Errorf("appendonly = %q, want no", cfg["appendonly"])
	}
	save, err := rdb.ConfigGet(ctx, "save").Result()
	if err != nil {
		t.Fatalf("config get: %v", err)
	}
	if save["save"] != "" {
		t.Errorf("save = %q, want empty", save["save"])
	}

	pid := srv.Pid()
	if pid == 0 {
		t.Fatal("Pid() = 0 for a running server")
	}
	srv.Stop(t)
	if got := srv.Pid(); got != 0 {
		t.Errorf("Pid() after Stop = %d, want 0", got)
	}
	// The process has been reaped: signal 0 must fail.
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("kill(%d, 0) after Stop = %v, want ESRCH", pid, err)
	}
	srv.Stop(t) // stopping twice is a no-op
}

func TestRestart(t *testing.T) {
	tests := []struct {
		name     string
		cfg      Config
		wantKept bool
	}{
		{name: "no persistence loses data", cfg: Config{}, wantKept: false},
		{name: "aof always keeps data", cfg: Config{AppendOnly: true, AppendFsync: "always"}, wantKept: true},
		{name: "aof everysec keeps data on clean stop", cfg: Config{AppendOnly: true, AppendFsync: "everysec"}, wantKept: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			srv := StartWith(t, tt.cfg)
			rdb := srv.Client(t)
			if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
				t.Fatalf("set: %v", err)
			}
			addr, pid := srv.Addr(), srv.Pid()
			srv.Restart(t)
			if srv.Addr() != addr {
				t.Errorf("Addr after Restart = %s, want %s", srv.Addr(), addr)
			}
			if srv.Pid() == pid || srv.Pid() == 0 {
				t.Errorf("Pid after Restart = %d, want a new pid (old %d)", srv.Pid(), pid)
			}
			got, err := rdb.Get(ctx, "k").Result()
			switch {
			case tt.wantKept && err != nil:
				t.Fatalf("get after restart: %v", err)
			case tt.wantKept && got != "v":
				t.Errorf("get after restart = %q, want v", got)
			case !tt.wantKept && !errors.Is(err, redis.Nil):
				t.Errorf("get after restart = %q, %v; want redis.Nil", got, err)
			}
		})
	}
}

func TestStartWithArgs(t *testing.T) {
	srv := StartWith(t, Config{Args: []string{"--maxmemory", "10mb"}})
	cfg, err := srv.Client(t).ConfigGet(context.Background(), "maxmemory").Result()
	if err != nil {
		t.Fatalf("config get: %v", err)
	}
	if cfg["maxmemory"] != "10485760" {
		t.Errorf("maxmemory = %q, want 10485760", cfg["maxmemory"])
	}
}

func TestStartMiniControlsTime(t *testing.T) {
	m, rdb := StartMini(t)
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	m.SetTime(at)
	got, err := rdb.Time(context.Background()).Result()
	if err != nil {
		t.Fatalf("time: %v", err)
	}
	if !got.Equal(at) {
		t.Errorf("TIME = %v, want %v", got, at)
	}
}

func TestForEachBackendRunsBoth(t *testing.T) {
	var seen []string
	ForEachBackend(t, func(t *testing.T, rdb *redis.Client, b Backend) {
		seen = append(seen, b.Name)
		if err := rdb.Set(context.Background(), "k", b.Name, 0).Err(); err != nil {
			t.Fatalf("set: %v", err)
		}
		if b.Real != (b.Server != nil) || b.Real == (b.Mini != nil) {
			t.Errorf("backend %q: Real=%v Server=%v Mini=%v", b.Name, b.Real, b.Server != nil, b.Mini != nil)
		}
	})
	if _, err := exec.LookPath(Binary); err == nil {
		if strings.Join(seen, ",") != "miniredis,redis" {
			t.Errorf("subtests ran = %v, want [miniredis redis]", seen)
		}
	}
}

func TestMissingBinarySkips(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv("CI", "")
	var inner *testing.T
	t.Run("start", func(t *testing.T) {
		inner = t
		Start(t)
		t.Error("Start returned without redis-server on PATH")
	})
	if !inner.Skipped() {
		t.Error("Start without redis-server did not skip the test")
	}
}

// TestMissingBinaryFailsInCI re-runs this test binary with CI=true and an
// empty PATH; the helper test must fail, not skip.
func TestMissingBinaryFailsInCI(t *testing.T) {
	if os.Getenv("REDISTEST_HELPER") == "1" {
		Start(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestMissingBinaryFailsInCI$", "-test.v")
	cmd.Env = append(os.Environ(), "REDISTEST_HELPER=1", "CI=true", "PATH="+t.TempDir())
	out, err := cmd.CombinedOutput()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		t.Fatalf("helper run: err = %v, want a non-zero exit; output:\n%s", err, out)
	}
	if !strings.Contains(string(out), "CI=true") || !strings.Contains(string(out), "--- FAIL") {
		t.Errorf("helper output lacks the CI failure message:\n%s", out)
	}
}
