package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// loadingServer is a minimal RESP server that answers PING with LOADING
// the first loading times, then PONG, and any other command with an error.
func loadingServer(t *testing.T, loading int32) (addr string, pings *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	pings = &atomic.Int32{}
	serve := func(c net.Conn) {
		defer c.Close()
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "*")))
			if err != nil {
				return
			}
			var args []string
			for range n {
				hdr, err := r.ReadString('\n')
				if err != nil {
					return
				}
				size, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(hdr, "$")))
				if err != nil {
					return
				}
				buf := make([]byte, size+2)
				if _, err := io.ReadFull(r, buf); err != nil {
					return
				}
				args = append(args, string(buf[:size]))
			}
			reply := "-ERR unknown command\r\n"
			if len(args) > 0 && strings.EqualFold(args[0], "PING") {
				reply = "+PONG\r\n"
				if pings.Add(1) <= loading {
					reply = "-LOADING Redis is loading the dataset in memory\r\n"
				}
			}
			if _, err := io.WriteString(c, reply); err != nil {
				return
			}
		}
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
	return l.Addr().String(), pings
}

// TestConnectWaitsWhileRedisIsLoading: the first PING of a worker (and of
// a management command, within its bound) waits while Redis answers
// LOADING instead of failing, and logs it once.
func TestConnectWaitsWhileRedisIsLoading(t *testing.T) {
	t.Parallel()
	addr, pings := loadingServer(t, 4)
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := pingUntilLoaded(ctx, rdb, logger); err != nil {
		t.Fatalf("pingUntilLoaded: %v", err)
	}
	if got := pings.Load(); got != 5 {
		t.Errorf("%d PINGs, want 4 answered LOADING and 1 PONG", got)
	}
	if n := strings.Count(logs.String(), "Redis is loading its data set"); n != 1 {
		t.Errorf("logged the wait %d times, want once:\n%s", n, logs.String())
	}

	// A management command (no logger) waits too.
	addr, _ = loadingServer(t, 2)
	rdb2 := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	t.Cleanup(func() { _ = rdb2.Close() })
	if err := pingUntilLoaded(ctx, rdb2, nil); err != nil {
		t.Fatalf("pingUntilLoaded without a logger: %v", err)
	}

	// A worker gives up when it is stopped.
	addr, _ = loadingServer(t, 1<<30)
	rdb3 := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	t.Cleanup(func() { _ = rdb3.Close() })
	sctx, scancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer scancel()
	err := pingUntilLoaded(sctx, rdb3, logger)
	if err == nil || !strings.Contains(err.Error(), "LOADING") {
		t.Errorf("pingUntilLoaded until stopped: %v", err)
	}
}
