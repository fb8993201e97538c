package measure

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/bench/internal/result"
	"github.com/duroworker/duroworker/internal/redistest"
)

// TestNameFromSource: a composed script is named after its last "-- x.lua"
// header (common.lua comes first); a source without one by its first line
// of code.
func TestNameFromSource(t *testing.T) {
	for src, want := range map[string]string{
		"-- common.lua: helpers\nlocal x = 1\n-- ack_orch.lua: commit a turn\nreturn 1\n": "ack_orch",
		"-- fetch_work.lua: fetch\nreturn 1":                                              "fetch_work",
		"\n-- no header\nlocal res = {}\nreturn res":                                      "«local res = {}»",
		// a wrapped comment line that starts with another script's name
		"-- common.lua: helpers\n-- ack_work.lua: complete\n-- ack_orch.lua) is also\nreturn 1": "ack_work",
	} {
		if got := nameFromSource(src); got != want {
			t.Errorf("nameFromSource(%q) = %q, want %q", src, got, want)
		}
	}
}

// TestWindowRecordsCommandstatsAndScripts runs a script and a command in a
// window on a real redis-server: the Redis cost holds the commandstats
// deltas (Lua-internal commands under their own names, the window's own
// INFO left out) and the script's calls under the name of its header,
// learned from SCRIPT LOAD.
func TestWindowRecordsCommandstatsAndScripts(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	base := srv.Client(t)
	rdb, rt := CountedClient(base, 2)
	defer rdb.Close()
	script := redis.NewScript("-- common.lua: helpers\n-- bench_set.lua: set a key\nreturn redis.call('SET', KEYS[1], ARGV[1])\n")
	if err := script.Load(ctx, rdb).Err(); err != nil {
		t.Fatal(err)
	}
	w := BeginWindow(ctx, base, nil, rt)
	for i := 0; i < 3; i++ {
		if err := script.EvalSha(ctx, rdb, []string{"k"}, i).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rdb.HSet(ctx, "h", "f", "v").Err(); err != nil {
		t.Fatal(err)
	}
	var r result.Result
	w.End(ctx, &r, 3, false)
	if r.Redis == nil || r.Redis.Per != 3 {
		t.Fatalf("redis cost %+v", r.Redis)
	}
	calls := map[string]int64{}
	for _, c := range r.Redis.Commands {
		calls[c.Name] = c.Calls
	}
	if calls["evalsha"] != 3 || calls["set"] != 3 || calls["hset"] != 1 {
		t.Fatalf("commandstats deltas %v", calls)
	}
	if _, ok := calls["info"]; ok {
		t.Fatalf("the window's own INFO is counted: %v", calls)
	}
	if len(r.Redis.Scripts) != 1 || r.Redis.Scripts[0].Name != "bench_set" || r.Redis.Scripts[0].Calls != 3 || r.Redis.Scripts[0].SHA != script.Hash() {
		t.Fatalf("scripts %+v", r.Redis.Scripts)
	}
}
