//go:build unix

package main

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/duroworker/duroworker/internal/redistest"
)

// TestDashboardStopsOnSIGTERM: the dashboard process shuts its server
// down on SIGTERM and exits 0, as docs/cli.md says.
func TestDashboardStopsOnSIGTERM(t *testing.T) {
	m, _ := redistest.StartMini(t)
	cmd := exec.Command(os.Args[0], "dashboard", "--listen", "127.0.0.1:0", "--redis", "redis://"+m.Addr()+"/0")
	cmd.Env = append(os.Environ(), envCLIMain+"=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	serving := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "dashboard: serving ") {
				serving <- sc.Text()
			}
		}
	}()
	select {
	case line := <-serving:
		t.Log(line)
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("the dashboard never said it serves; stderr:\n%s", stderr.String())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case <-exited:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("the dashboard did not exit after SIGTERM")
	}
	if code := cmd.ProcessState.ExitCode(); code != exitOK {
		t.Errorf("exit %d after SIGTERM (%v), want 0; stderr:\n%s", code, cmd.ProcessState, stderr.String())
	}
}
