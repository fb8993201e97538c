package client

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/internal/redistest"
	"github.com/duroworker/duroworker/internal/replay"
	"github.com/duroworker/duroworker/queue"
)

// TestInvalidUTF8IsRefused: ids, names, inputs, event data and reasons
// that are not valid UTF-8 are refused before anything is sent, instead of
// being stored with U+FFFD in place of their bytes.
func TestInvalidUTF8IsRefused(t *testing.T) {
	c, rdb := newMiniClient(t)
	ctx := context.Background()
	if err := c.Start(ctx, "ok", "Echo", "fine"); err != nil {
		t.Fatal(err)
	}
	cases := map[string]error{
		"id":            c.Start(ctx, "bad\xff", "Echo", ""),
		"name":          c.Start(ctx, "i", "Echo\xc3\x28", ""),
		"input":         c.Start(ctx, "i", "Echo", "in\xff"),
		"4 MiB of 0xFF": c.Start(ctx, "i", "Echo", strings.Repeat("\xff", MaxPayloadBytes)),
		"surrogate":     c.Start(ctx, "i", "Echo", "\xed\xa0\x80"),
		"typed input":   c.StartTyped(ctx, "i", "Echo", "\xff"),
		"event id":      c.RaiseEvent(ctx, "ok\xff", "e", "x"),
		"event name":    c.RaiseEvent(ctx, "ok", "e\xff", "x"),
		"event data":    c.RaiseEvent(ctx, "ok", "e", "x\xff"),
		"queue name":    c.EnqueueEvent(ctx, "ok", "q\xff", "x"),
		"queue data":    c.EnqueueEvent(ctx, "ok", "q", "x\xff"),
		"reason":        c.Cancel(ctx, "ok", "why\xff"),
	}
	for name, err := range cases {
		if !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), "UTF-8") {
			t.Errorf("%s: err = %v, want ErrInvalidInput about UTF-8", name, err)
		}
	}
	if st, _ := c.Status(ctx, "i"); st.State != StateNotFound {
		t.Errorf("a refused start created the instance: %+v", st)
	}
	if n := inboxLen(t, rdb, "ok"); n != 1 {
		t.Errorf("inbox of ok has %d messages, want only the start", n)
	}
}

// TestReservedNamesAreRefused: names under replay.ReservedPrefix belong to
// duroworker's own orchestrations and are refused, as docs/protocol.md says.
func TestReservedNamesAreRefused(t *testing.T) {
	c, _ := newTestClient(t)
	ctx := context.Background()
	for _, name := range []string{replay.ReservedPrefix, replay.ReservedPrefix + ":get-kv", "__duroworkerX"} {
		if err := c.Start(ctx, "i", name, ""); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("Start(%q) = %v, want ErrInvalidInput", name, err)
		}
		if err := c.StartVersioned(ctx, "i", name, "1.0.0", ""); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("StartVersioned(%q) = %v, want ErrInvalidInput", name, err)
		}
	}
	if err := c.Start(ctx, "i", "_duroworker", ""); err != nil {
		t.Errorf("a name that only resembles the reserved prefix: %v", err)
	}
}

// TestStoredSizeStaysWithinTheLimit: 4 MiB of '<' is stored as about 4 MiB
// (no HTML escaping), and 4 MiB of control characters, which JSON stores
// at six bytes each, is refused instead of stored as 24 MiB.
func TestStoredSizeStaysWithinTheLimit(t *testing.T) {
	c, rdb := newMiniClient(t)
	ctx := context.Background()
	lt := strings.Repeat("<", MaxPayloadBytes)
	if err := c.Start(ctx, "html", "Echo", lt); err != nil {
		t.Fatalf("start with 4 MiB of '<': %v", err)
	}
	if err := c.RaiseEvent(ctx, "html", "e", strings.Repeat("&>", MaxPayloadBytes/2)); err != nil {
		t.Fatalf("event with 4 MiB of '&>': %v", err)
	}
	for i, m := range inbox(t, rdb, "html") {
		if len(m) > MaxPayloadBytes+1024 {
			t.Errorf("inbox message %d is stored as %d bytes for a payload of %d", i, len(m), MaxPayloadBytes)
		}
	}
	ctl := strings.Repeat("\x01", MaxPayloadBytes)
	cases := map[string]error{
		"start":  c.Start(ctx, "ctl", "Echo", ctl),
		"event":  c.RaiseEvent(ctx, "html", "e", ctl),
		"queue":  c.EnqueueEvent(ctx, "html", "q", ctl),
		"cancel": c.Cancel(ctx, "html", ctl),
		// quotes take two bytes each once escaped: 3 MiB of them is 6 MiB
		"quotes": c.RaiseEvent(ctx, "html", "e", strings.Repeat(`"`, 3<<20)),
	}
	for name, err := range cases {
		if !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), "stored as") {
			t.Errorf("%s with a payload whose JSON form is over the limit: %v, want ErrInvalidInput", name, err)
		}
	}
	if n := inboxLen(t, rdb, "html"); n != 2 {
		t.Errorf("inbox has %d messages, want 2 (the refused ones must not be written)", n)
	}
	// A payload whose escaped form fits is accepted.
	if err := c.RaiseEvent(ctx, "html", "e", strings.Repeat("\x01", 512<<10)); err != nil {
		t.Errorf("512 KiB of control characters (3 MiB stored): %v", err)
	}
}

// TestRequestIDs: a call named with WithRequestID can be repeated; the
// repeat answers like the first run and delivers nothing twice.
func TestRequestIDs(t *testing.T) {
	c, rdb := newMiniClient(t)
	ctx := context.Background()
	for run := 1; run <= 2; run++ {
		if err := c.Start(ctx, "i", "Echo", "in", WithRequestID("start-i")); err != nil {
			t.Fatalf("start, run %d: %v", run, err)
		}
		if err := c.RaiseEvent(ctx, "i", "e", "x", WithRequestID("raise-i")); err != nil {
			t.Fatalf("raise, run %d: %v", run, err)
		}
		if err := c.EnqueueEvent(ctx, "i", "q", "x", WithRequestID("enqueue-i")); err != nil {
			t.Fatalf("enqueue, run %d: %v", run, err)
		}
		if err := c.Cancel(ctx, "i", "stop", WithRequestID("cancel-i")); err != nil {
			t.Fatalf("cancel, run %d: %v", run, err)
		}
	}
	if n := inboxLen(t, rdb, "i"); n != 4 {
		t.Fatalf("inbox has %d messages, want 4 (one per request)", n)
	}
	if err := c.Start(ctx, "i", "Echo", "in"); !errors.Is(err, ErrInstanceExists) {
		t.Fatalf("a new start of the same id: %v, want ErrInstanceExists", err)
	}
	if ttl := rdb.PTTL(ctx, "{dw}:req:start-i").Val(); ttl <= GeneratedRequestTTL || ttl > queue.RequestTTL {
		t.Fatalf("a named request is remembered for %v, want up to %v", ttl, queue.RequestTTL)
	}
	if err := c.Start(ctx, "k", "Echo", "in"); err != nil {
		t.Fatal(err)
	}
	named := map[string]bool{"{dw}:req:start-i": true, "{dw}:req:raise-i": true, "{dw}:req:enqueue-i": true, "{dw}:req:cancel-i": true}
	generated := 0
	for _, key := range rdb.Keys(ctx, "{dw}:req:*").Val() {
		if named[key] {
			continue
		}
		generated++
		if ttl := rdb.PTTL(ctx, key).Val(); ttl <= 0 || ttl > GeneratedRequestTTL {
			t.Errorf("%s (a generated request id) is remembered for %v, want up to %v", key, ttl, GeneratedRequestTTL)
		}
	}
	if generated != 1 {
		t.Errorf("%d generated request records, want 1 (the start of k)", generated)
	}
	if err := c.Start(ctx, "j", "Echo", "in", WithRequestID("start-i")); !errors.Is(err, ErrRequestReused) {
		t.Fatalf("a request id reused for another instance: %v, want ErrRequestReused", err)
	}
	if err := c.RaiseEvent(ctx, "i", "e", "x", WithRequestID("has space")); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("a malformed request id: %v, want ErrInvalidInput", err)
	}
}

// TestLostRepliesDoNotTurnSuccessIntoErrors drops the reply of a start, a
// raise and a cancel after Redis ran them, through a proxy between go-redis
// and the server; go-redis resends the script on a new connection, and
// each call still returns nil, having written once.
func TestLostRepliesDoNotTurnSuccessIntoErrors(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, direct *redis.Client, _ redistest.Backend) {
		p := startDropProxy(t, direct.Options().Addr)
		rdb := redis.NewClient(&redis.Options{Addr: p.addr(), MaxRetries: 3})
		defer rdb.Close()
		c := New(queue.New(rdb, queue.Options{}))
		defer c.Close()
		ctx := context.Background()
		// load the scripts, so that the dropped reply is the script's own
		// and not a NOSCRIPT
		if err := c.Start(ctx, "warm", "Echo", ""); err != nil {
			t.Fatal(err)
		}
		if err := c.RaiseEvent(ctx, "warm", "e", ""); err != nil {
			t.Fatal(err)
		}

		p.dropNextReply()
		if err := c.Start(ctx, "lost", "Echo", "in"); err != nil {
			t.Fatalf("start whose first reply was lost: %v", err)
		}
		p.dropNextReply()
		if err := c.RaiseEvent(ctx, "lost", "e", "x"); err != nil {
			t.Fatalf("raise whose first reply was lost: %v", err)
		}
		p.dropNextReply()
		if err := c.Cancel(ctx, "lost", "stop"); err != nil {
			t.Fatalf("cancel whose first reply was lost: %v", err)
		}
		if n := p.dropped.Load(); n != 3 {
			t.Fatalf("the proxy dropped %d replies, want 3", n)
		}
		if n := inboxLen(t, direct, "lost"); n != 3 {
			t.Fatalf("inbox has %d messages, want 3 (start, event, cancel, each once)", n)
		}
	})
}

// TestDeniedChannels: under an ACL that allows the namespace's keys but no
// pub/sub channel, a start fails without writing anything (so a retry once
// the channel is allowed succeeds), and Wait logs the denied subscription
// once and falls back to re-reading the status.
func TestDeniedChannels(t *testing.T) {
	srv := redistest.Start(t)
	admin := srv.Client(t)
	ctx := context.Background()
	if err := admin.Do(ctx, "ACL", "SETUSER", "app", "on", ">pw", "~{dw}:*", "resetchannels", "+@all").Err(); err != nil {
		t.Fatalf("ACL SETUSER: %v", err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), Username: "app", Password: "pw"})
	defer rdb.Close()
	c := New(queue.New(rdb, queue.Options{}))
	defer c.Close()
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	c.waiter.log = func() *slog.Logger { return logger }

	if err := c.Start(ctx, "i", "Echo", "in"); err == nil || !strings.Contains(err.Error(), "nothing was written") {
		t.Fatalf("start without channel permission: %v, want the denial", err)
	}
	if keys := admin.Keys(ctx, "*").Val(); len(keys) != 0 {
		t.Fatalf("a denied start wrote %q", keys)
	}
	admin.Do(ctx, "ACL", "SETUSER", "app", "&{dw}:wake:*")
	if err := c.Start(ctx, "i", "Echo", "in"); err != nil {
		t.Fatalf("start once the wake channels are allowed: %v", err)
	}

	// The instance ends while Wait cannot subscribe to {dw}:ended.
	done := make(chan Status, 1)
	go func() {
		st, err := c.Wait(ctx, "i")
		if err != nil {
			t.Errorf("wait: %v", err)
		}
		done <- st
	}()
	eventually(t, "the denied subscription is logged", func() bool {
		return strings.Contains(logs.String(), "denied the subscription")
	})
	time.Sleep(3 * deniedPollInterval) // several retries of the subscription
	admin.HSet(ctx, "{dw}:inst:i", "status", "Completed", "out", "done")
	select {
	case st := <-done:
		if st.State != StateCompleted || st.Output != "done" {
			t.Fatalf("wait returned %+v", st)
		}
	case <-time.After(recheckInterval / 2):
		t.Fatal("wait did not notice the end without its subscription (it must re-read the status while denied)")
	}
	if n := strings.Count(logs.String(), "denied the subscription"); n != 1 {
		t.Fatalf("the denial was logged %d times, want once:\n%s", n, logs.String())
	}
	admin.Do(ctx, "ACL", "SETUSER", "app", "&*")
	eventually(t, "the restored subscription is logged", func() bool {
		return strings.Contains(logs.String(), "subscribed to {dw}:ended again")
	})
}

// newMiniClient returns a client on a fresh miniredis, with its connection.
func newMiniClient(t *testing.T) (*Client, *redis.Client) {
	t.Helper()
	_, rdb := redistest.StartMini(t)
	c := New(queue.New(rdb, queue.Options{}))
	t.Cleanup(func() { _ = c.Close() })
	return c, rdb
}

// inbox returns the inbox of instance id in the default namespace.
func inbox(t *testing.T, rdb *redis.Client, id string) []string {
	t.Helper()
	msgs, err := rdb.LRange(context.Background(), queue.NewKeys("").InboxKey(id), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

func inboxLen(t *testing.T, rdb *redis.Client, id string) int { return len(inbox(t, rdb, id)) }

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// dropProxy forwards TCP connections to a Redis server. When armed, it
// throws away the next reply the server sends (after the server ran the
// command) and closes that connection, as a network fault would.
type dropProxy struct {
	ln      net.Listener
	target  string
	armed   atomic.Bool
	dropped atomic.Int32
}

func startDropProxy(t *testing.T, target string) *dropProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &dropProxy{ln: ln, target: target}
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); p.handle(conn) }()
		}
	}()
	return p
}

func (p *dropProxy) addr() string   { return p.ln.Addr().String() }
func (p *dropProxy) dropNextReply() { p.armed.Store(true) }

func (p *dropProxy) handle(client net.Conn) {
	defer client.Close()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer server.Close()
	go func() {
		_, _ = io.Copy(server, client)
		_ = server.Close()
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := server.Read(buf)
		if n > 0 {
			if p.armed.CompareAndSwap(true, false) {
				p.dropped.Add(1)
				return // the reply is lost; both connections close
			}
			if _, werr := client.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
