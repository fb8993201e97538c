package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/duroworker/duroworker/internal/redistest"
)

// aclCommands are the commands that an application's client, its workers
// and the management commands of the CLI need, as documented in
// docs/operations.md (ACL and TLS). Commands that the Lua scripts call are
// checked against the caller's ACL too, so they are listed.
var aclCommands = []string{
	// connection set-up by go-redis (its CLIENT SETINFO may be denied: it
	// ignores the error), and the CLI's first PING
	"hello", "ping",
	// scripts (EVALSHA, then EVAL after a SCRIPT FLUSH or restart)
	"evalsha", "eval",
	// direct reads and writes of the client, the worker and the CLI
	"hget", "hgetall", "hexists", "exists", "lrange", "smembers", "scard", "zcard", "zrange", "zscore", "zadd",
	"xrange", "xdel", "time", "multi", "exec",
	// the activity work streams: the worker's blocking read (and the group
	// it creates when missing), and what the work scripts call
	"xreadgroup", "xgroup|create", "xack", "xclaim", "xpending", "xlen",
	// cutting that read short at shutdown (queue.WorkReader)
	"client|id", "client|unblock",
	// wake-ups
	"subscribe", "unsubscribe", "publish",
	// the eviction check (denied: a warning, not a refusal)
	"config|get",
	// what the scripts call
	"del", "get", "set", "hdel", "hincrby", "hkeys", "hlen", "hmget", "hset", "incr", "llen", "lpush", "ltrim",
	"pexpire", "rename", "rpush", "sadd", "srandmember", "srem", "type", "xadd", "zcount", "zrangebyscore", "zrank", "zrem", "zremrangebyscore",
}

// TestACLMinimumPermissions creates an ACL user with exactly the documented
// permissions on one prefix, and runs a worker node and every management
// command through it on a real redis-server. The same user cannot touch
// another prefix.
func TestACLMinimumPermissions(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	admin := srv.Client(t)
	e := newOpsEnv(t, "", admin)
	args := []any{"ACL", "SETUSER", "dwapp", "reset", "on", ">app-pw", "~{" + e.prefix + "}:*", "&{" + e.prefix + "}:*", "-@all"}
	for _, c := range aclCommands {
		args = append(args, "+"+c)
	}
	if err := admin.Do(context.Background(), args...).Err(); err != nil {
		t.Fatalf("ACL SETUSER: %v", err)
	}
	e.url = fmt.Sprintf("redis://dwapp:app-pw@%s/0", srv.Addr())

	stop := e.startWorker("--node-id", "acl-node", "--log-level", "debug")
	out := e.ok("start", helloName, "acl", "--id", "acl-1", "--wait", "--timeout", "30s")
	mustMatch(t, "start --wait", `(?m)^Output:\s+Hello, acl!$`, out)
	e.ok("start", approvalName, `{"timeout_ms":3600000}`, "--id", "acl-2")
	e.waitRunning("acl-2")
	e.ok("enqueue", "acl-2", "inbox", "x")
	e.ok("raise", "acl-2", "approve", "ops")
	e.ok("wait", "acl-2", "--timeout", "30s")
	e.ok("start", approvalName, `{"timeout_ms":3600000}`, "--id", "acl-3")
	e.waitRunning("acl-3")
	e.ok("cancel", "acl-3", "by acl test")
	e.failsWith(exitFailed, "cancelled: by acl test", "wait", "acl-3", "--timeout", "30s")
	for _, args := range [][]string{{"status", "acl-1"}, {"info", "acl-1"}, {"list"}, {"history", "acl-1"}, {"queues"}, {"metrics"},
		{"dlq", "list"}, {"sessions", "--owner", "acl-node"}, {"prune", "acl-1", "--keep-last", "1"}, {"delete", "acl-1"},
		{"delete", "--completed-before", "0s"}} {
		e.ok(args...)
	}
	code, stderr := stop()
	if code != 0 || strings.Contains(stderr, "NOPERM") || strings.Contains(stderr, "level=ERROR") {
		t.Errorf("worker under the ACL: exit %d, errors or denials in its log", code)
	}
	for _, l := range strings.Split(stderr, "\n") {
		if strings.Contains(l, "level=WARN") && !strings.Contains(l, `msg="orchestration failed"`) {
			t.Errorf("worker under the ACL warns: %s", l)
		}
	}

	// Nothing was denied, not even what the code retries or tolerates
	// silently (a SUBSCRIBE, CONFIG GET, CLIENT SETINFO on Redis 7.2+).
	denied, err := admin.Do(context.Background(), "ACL", "LOG").Slice()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range denied {
		if entry := fmt.Sprint(d); !strings.Contains(entry, "setinfo") {
			t.Errorf("denied under the documented ACL: %s", entry)
		}
	}

	// Another prefix is out of reach.
	code, _, stderr = runCLI(t, "list", "--redis", e.url, "--prefix", "other")
	if code != 1 || !strings.Contains(stderr, "NOPERM") {
		t.Errorf("list of another prefix under the ACL: exit %d, %q", code, stderr)
	}
}
