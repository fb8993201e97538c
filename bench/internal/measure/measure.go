// Package measure holds the instruments and drivers that the duroworker
// workloads and the peer program (bench/peers) share, so that both sides
// are measured the same way: a go-redis client that counts its round trips,
// INFO snapshots of the Redis server, this process's CPU and memory, the
// measurement window of a phase, a latency tracker and the start schedules
// (many at once, one at a time, or at a fixed rate).
package measure

import (
	"bufio"
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// RoundTrips counts the requests a go-redis client sends: every command is
// one round trip and so is every pipeline or transaction, whatever it holds.
// Add it to a client with AddHook. Pub/sub traffic is not counted.
//
// It also counts the Lua scripts sent (EVALSHA and EVAL, by SHA) and learns
// their names from the sources it sees (EVAL, SCRIPT LOAD): see ScriptName.
type RoundTrips struct {
	n       atomic.Int64
	cmds    atomic.Int64
	scripts sync.Map // SHA -> *atomic.Int64
}

// Count returns the round trips so far.
func (c *RoundTrips) Count() int64 { return c.n.Load() }

// Commands returns the commands sent so far (every command of a pipeline
// counts, and MULTI/EXEC are not counted).
func (c *RoundTrips) Commands() int64 { return c.cmds.Load() }

// DialHook implements redis.Hook.
func (c *RoundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook implements redis.Hook.
func (c *RoundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.n.Add(1)
		c.cmds.Add(1)
		c.noteScript(cmd.Args())
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook implements redis.Hook.
func (c *RoundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n.Add(1)
		c.cmds.Add(int64(len(cmds)))
		for _, cmd := range cmds {
			c.noteScript(cmd.Args())
		}
		return next(ctx, cmds)
	}
}

// CountedClient returns a new client to the same server and database as
// rdb, with its own pool of poolSize connections (0: go-redis's default) and
// a round-trip counter.
func CountedClient(rdb *redis.Client, poolSize int) (*redis.Client, *RoundTrips) {
	opt := *rdb.Options()
	// The parent's push processor already has its handlers registered; a
	// new client must build its own.
	opt.PushNotificationProcessor = nil
	if poolSize > 0 {
		opt.PoolSize = poolSize
	}
	c := redis.NewClient(&opt)
	rt := &RoundTrips{}
	c.AddHook(rt)
	return c, rt
}

// ServerStats is a snapshot of the Redis counters the workloads report.
type ServerStats struct {
	OK            bool    // INFO answered with the fields below
	TotalCommands int64   // total_commands_processed (commands run by Lua scripts included)
	UsedMemory    int64   // used_memory
	UsedCPU       float64 // used_cpu_user + used_cpu_sys, seconds
	// Commands is INFO commandstats: calls and microseconds per command
	// (a script's time includes the commands it runs, which are also
	// counted under their own names).
	Commands map[string]CommandStat
}

// CommandStat is one line of INFO commandstats.
type CommandStat struct {
	Calls int64
	Usec  int64
}

// ReadServerStats reads INFO stats, memory, cpu and commandstats. Servers
// that do not report them (miniredis) give OK false.
func ReadServerStats(ctx context.Context, rdb *redis.Client) ServerStats {
	info, err := rdb.Info(ctx, "stats", "memory", "cpu", "commandstats").Result()
	if err != nil {
		return ServerStats{}
	}
	f := InfoFields(info)
	var s ServerStats
	var ok1, ok2 bool
	s.TotalCommands, ok1 = parseInt(f["total_commands_processed"])
	s.UsedMemory, ok2 = parseInt(f["used_memory"])
	user, _ := strconv.ParseFloat(f["used_cpu_user"], 64)
	sys, _ := strconv.ParseFloat(f["used_cpu_sys"], 64)
	s.UsedCPU = user + sys
	s.Commands = map[string]CommandStat{}
	for k, v := range f {
		name, ok := strings.CutPrefix(k, "cmdstat_")
		if !ok {
			continue
		}
		var c CommandStat
		for _, part := range strings.Split(v, ",") {
			if n, ok := strings.CutPrefix(part, "calls="); ok {
				c.Calls, _ = parseInt(n)
			} else if n, ok := strings.CutPrefix(part, "usec="); ok {
				c.Usec, _ = parseInt(n)
			}
		}
		s.Commands[name] = c
	}
	s.OK = ok1 && ok2
	return s
}

// InfoFields parses the "name:value" lines of an INFO reply.
func InfoFields(info string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(info, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			out[k] = v
		}
	}
	return out
}

func parseInt(s string) (int64, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	return n, err == nil
}

// ProcessRSS returns this process's resident set size in bytes from
// /proc/self/status (VmRSS), or 0 where that file does not exist.
func ProcessRSS() int64 {
	return procStatusField("VmRSS:")
}

func procStatusField(name string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name); ok {
			fields := strings.Fields(v)
			if len(fields) == 0 {
				return 0
			}
			n, _ := strconv.ParseInt(fields[0], 10, 64)
			return n * 1024 // kB
		}
	}
	return 0
}

// HeapInUse returns the Go heap in use, in bytes.
func HeapInUse() int64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse)
}
