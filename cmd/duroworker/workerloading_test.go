package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duroworker/duroworker/internal/redistest"
)

// loadingRedis is a TCP front of a Redis server that answers every command
// with LOADING (as Redis does while it reloads its dataset after a restart)
// until ready is set; connections accepted after that are piped to the
// server.
type loadingRedis struct {
	ln      net.Listener
	backend string
	ready   atomic.Bool
	refused atomic.Int64
}

func startLoadingRedis(t *testing.T, backend string) *loadingRedis {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &loadingRedis{ln: ln, backend: backend}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go l.serve(c)
		}
	}()
	return l
}

func (l *loadingRedis) serve(c net.Conn) {
	defer c.Close()
	if l.ready.Load() {
		b, err := net.Dial("tcp", l.backend)
		if err != nil {
			return
		}
		defer b.Close()
		go func() { _, _ = io.Copy(b, c) }()
		_, _ = io.Copy(c, b)
		return
	}
	r := bufio.NewReader(c)
	for {
		// One RESP array of bulk strings per command.
		var cmd bytes.Buffer
		line, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "*") {
			return
		}
		cmd.WriteString(line)
		n, _ := strconv.Atoi(strings.TrimSpace(line[1:]))
		for i := 0; i < n; i++ {
			hdr, err := r.ReadString('\n')
			if err != nil {
				return
			}
			cmd.WriteString(hdr)
			size, _ := strconv.Atoi(strings.TrimSpace(hdr[1:]))
			if _, err := io.CopyN(&cmd, r, int64(size+2)); err != nil {
				return
			}
		}
		if l.ready.Load() {
			// Loaded: like a real Redis, the same connection now answers.
			b, err := net.Dial("tcp", l.backend)
			if err != nil {
				return
			}
			defer b.Close()
			if _, err := b.Write(cmd.Bytes()); err != nil {
				return
			}
			go func() { _, _ = io.Copy(b, r) }()
			_, _ = io.Copy(c, b)
			return
		}
		l.refused.Add(1)
		if _, err := c.Write([]byte("-LOADING Redis is loading the dataset in memory\r\n")); err != nil {
			return
		}
	}
}

// TestWorkerWaitsWhileRedisLoads: `duroworker worker` started while Redis
// answers LOADING waits for it instead of exiting, then runs work.
func TestWorkerWaitsWhileRedisLoads(t *testing.T) {
	m, rdb := redistest.StartMini(t)
	front := startLoadingRedis(t, m.Addr())
	e := newOpsEnv(t, "redis://"+front.ln.Addr().String(), rdb)
	stop := e.startWorker()
	deadline := time.Now().Add(20 * time.Second)
	for front.refused.Load() < 20 {
		if time.Now().After(deadline) {
			t.Fatalf("the worker did not retry against a loading Redis (%d commands refused)", front.refused.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	front.ready.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.client.Start(ctx, "after-loading", helloName, "world"); err != nil {
		t.Fatal(err)
	}
	st, err := e.client.Wait(ctx, "after-loading")
	if err != nil || st.Output != "Hello, world!" {
		code, stderr := stop()
		t.Fatalf("after loading: %+v %v (worker exit %d, stderr %s)", st, err, code, stderr)
	}
	if code, stderr := stop(); code != 0 || !strings.Contains(stderr, "waiting for it") {
		t.Fatalf("worker exit %d, stderr %q; want exit 0 and the wait logged", code, stderr)
	}
}
