package chaos

import (
	"context"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/internal/redistest"
)

// proxy is a TCP proxy on a loopback port in front of Redis; the workers
// connect through it. It can drop replies (the command reached Redis and ran,
// its reply is thrown away and the client's connection closed), stop
// forwarding for a while (a blackhole: bytes wait, connections stay open),
// and reset every connection (RST).
type proxy struct {
	ln     net.Listener
	target string

	// dropPermille is the chance, per reply chunk, that it is dropped.
	dropPermille atomic.Int64
	// paused stops forwarding in both directions while set.
	paused atomic.Bool

	dropped atomic.Int64 // replies dropped
	resets  atomic.Int64 // connections reset

	mu    sync.Mutex
	conns map[*proxyConn]struct{}
	wg    sync.WaitGroup
}

// proxyConn is one client connection and its upstream connection.
type proxyConn struct {
	client, server *net.TCPConn
	once           sync.Once
}

// close closes both sides; with rst it makes the kernel send RST instead of
// FIN.
func (c *proxyConn) close(rst bool) {
	c.once.Do(func() {
		if rst {
			_ = c.client.SetLinger(0)
			_ = c.server.SetLinger(0)
		}
		_ = c.client.Close()
		_ = c.server.Close()
	})
}

// startProxy listens on a free loopback port and forwards to target until
// the test ends.
func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy: listening: %v", err)
	}
	p := &proxy{ln: ln, target: target, conns: map[*proxyConn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// Addr is the address the workers dial.
func (p *proxy) Addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.wg.Add(1)
		go p.serve(c.(*net.TCPConn))
	}
}

func (p *proxy) serve(client *net.TCPConn) {
	defer p.wg.Done()
	d := net.Dialer{Timeout: 2 * time.Second}
	s, err := d.Dial("tcp", p.target)
	if err != nil {
		_ = client.Close() // Redis is down: the client sees a closed connection
		return
	}
	c := &proxyConn{client: client, server: s.(*net.TCPConn)}
	p.mu.Lock()
	if p.conns == nil { // closing
		p.mu.Unlock()
		c.close(false)
		return
	}
	p.conns[c] = struct{}{}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
	}()
	done := make(chan struct{})
	go func() {
		p.pump(c, c.client, c.server, false)
		close(done)
	}()
	p.pump(c, c.server, c.client, true)
	<-done
}

// pump copies from src to dst until either side closes. Replies (src is the
// server) may be dropped, which closes the connection after Redis ran the
// command: the client cannot know whether it did.
func (p *proxy) pump(c *proxyConn, src, dst *net.TCPConn, replies bool) {
	defer c.close(false)
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			for p.paused.Load() {
				time.Sleep(5 * time.Millisecond)
			}
			if replies {
				if pm := p.dropPermille.Load(); pm > 0 && rand.Int64N(1000) < pm {
					p.dropped.Add(1)
					return
				}
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF, a reset or a closed peer: the connection is over
		}
	}
}

// setDrop sets the chance (in thousandths) that a reply is dropped.
func (p *proxy) setDrop(permille int64) { p.dropPermille.Store(permille) }

// pause starts (true) or ends (false) a blackhole.
func (p *proxy) pause(on bool) { p.paused.Store(on) }

// resetAll resets every open connection.
func (p *proxy) resetAll() int {
	p.mu.Lock()
	cs := make([]*proxyConn, 0, len(p.conns))
	for c := range p.conns {
		cs = append(cs, c)
	}
	p.mu.Unlock()
	for _, c := range cs {
		c.close(true)
	}
	p.resets.Add(int64(len(cs)))
	return len(cs)
}

func (p *proxy) close() {
	p.paused.Store(false)
	_ = p.ln.Close()
	p.mu.Lock()
	cs := p.conns
	p.conns = nil
	p.mu.Unlock()
	for c := range cs {
		c.close(false)
	}
	p.wg.Wait()
}

// TestProxyDropsRepliesAfterTheCommandRan checks the proxy itself: with every
// reply dropped, a SET through the proxy fails for the client but is applied
// by Redis; a blackhole holds a command until it ends; a reset breaks open
// connections and the client reconnects.
func TestProxyDropsRepliesAfterTheCommandRan(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	srv := redistest.Start(t)
	direct := srv.Client(t)
	p := startProxy(t, srv.Addr())
	via := redis.NewClient(&redis.Options{Addr: p.Addr(), MaxRetries: -1})
	defer via.Close()
	ctx := context.Background()

	if err := via.Ping(ctx).Err(); err != nil { // connect (HELLO) before replies are dropped
		t.Fatalf("PING through the proxy: %v", err)
	}
	p.setDrop(1000)
	if err := via.Set(ctx, "k", "v", 0).Err(); err == nil {
		t.Fatal("SET through a proxy that drops every reply succeeded")
	}
	if got, _ := direct.Get(ctx, "k").Result(); got != "v" {
		t.Fatalf("the dropped SET did not run on Redis: GET k = %q", got)
	}
	p.setDrop(0)

	if err := via.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING through the proxy: %v", err)
	}
	p.pause(true)
	res := make(chan error, 1)
	go func() { res <- via.Set(ctx, "k2", "v2", 0).Err() }()
	time.Sleep(300 * time.Millisecond)
	if n, _ := direct.Exists(ctx, "k2").Result(); n != 0 {
		t.Fatal("a command went through during a blackhole")
	}
	p.pause(false)
	if err := <-res; err != nil {
		t.Fatalf("SET held by a blackhole failed after it: %v", err)
	}

	if p.resetAll() == 0 {
		t.Fatal("no open connection to reset")
	}
	_ = via.Ping(ctx).Err() // the first command on the reset connection fails
	if err := via.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING after a reset: %v", err)
	}
}
