package report

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/bench/internal/measure"
	"github.com/duroworker/duroworker/bench/internal/result"
	"github.com/duroworker/duroworker/engine"
)

// Header is the set of facts printed above every result.
type Header struct {
	Time          string            `json:"time"`
	Host          string            `json:"host"`
	CPU           string            `json:"cpu"`
	CPUs          int               `json:"cpus"`
	MemTotal      string            `json:"mem_total"`
	Kernel        string            `json:"kernel"`
	GoVersion     string            `json:"go_version"`
	OSArch        string            `json:"os_arch"`
	Engine        string            `json:"duroworker_engine"`
	Commit        string            `json:"commit,omitempty"`
	RedisVersion  string            `json:"redis_version"`
	RedisAddr     string            `json:"redis_addr"`
	RedisEmbedded bool              `json:"redis_embedded"`
	Persistence   map[string]string `json:"redis_persistence"`
	LoadAvg       string            `json:"load_average"`
	LoadAvgEnd    string            `json:"load_average_end,omitempty"`
	PeerVersions  map[string]string `json:"peer_versions,omitempty"`
	PeerSettings  map[string]string `json:"peer_settings,omitempty"`
}

// CollectHeader gathers the header: this machine, the Redis server of rdb
// (embedded: started by the bench) and its persistence settings, and the
// versions and settings of the peers (nil when none run).
func CollectHeader(ctx context.Context, rdb *redis.Client, embedded bool, peerVersions, peerSettings map[string]string) Header {
	h := Header{Time: time.Now().Format(time.RFC3339), CPUs: runtime.NumCPU(), GoVersion: runtime.Version(),
		OSArch: runtime.GOOS + "/" + runtime.GOARCH, Engine: engine.Version, RedisAddr: rdb.Options().Addr, RedisEmbedded: embedded,
		Persistence: map[string]string{}, PeerVersions: peerVersions, PeerSettings: peerSettings}
	h.Host, _ = os.Hostname()
	h.CPU = firstMatch("/proc/cpuinfo", "model name")
	if mem := firstMatch("/proc/meminfo", "MemTotal"); mem != "" {
		h.MemTotal = mem
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		h.Kernel = strings.TrimSpace(string(b))
	}
	h.LoadAvg = LoadAvg()
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		h.Commit = strings.TrimSpace(string(out))
	}
	info, _ := rdb.Info(ctx, "server", "persistence").Result()
	f := measure.InfoFields(info)
	h.RedisVersion = f["redis_version"]
	for _, k := range []string{"aof_enabled", "rdb_bgsave_in_progress", "rdb_changes_since_last_save"} {
		h.Persistence[k] = f[k]
	}
	for _, k := range []string{"appendonly", "appendfsync", "save", "maxmemory", "maxmemory-policy"} {
		if cfg, err := rdb.ConfigGet(ctx, k).Result(); err == nil {
			h.Persistence[k] = cfg[k]
		}
	}
	return h
}

// Print writes the header in a few lines.
func (h Header) Print(out io.Writer) {
	commit := ""
	if h.Commit != "" {
		commit = ", commit " + h.Commit
	}
	fmt.Fprintf(out, "duroworker engine %s%s, %s, %s, host %s\n", h.Engine, commit, h.GoVersion, h.OSArch, h.Host)
	fmt.Fprintf(out, "machine: %s, %d CPUs, %s memory, kernel %s, load average %s\n", orQ(h.CPU), h.CPUs, orQ(h.MemTotal), orQ(h.Kernel), orQ(h.LoadAvg))
	where := "at " + h.RedisAddr
	if h.RedisEmbedded {
		where = "embedded at " + h.RedisAddr
	}
	save := h.Persistence["save"]
	if save == "" {
		save = `""`
	}
	fmt.Fprintf(out, "redis %s %s: appendonly=%s appendfsync=%s save=%s (aof_enabled=%s, rdb_bgsave_in_progress=%s)\n",
		orQ(h.RedisVersion), where, orQ(h.Persistence["appendonly"]), orQ(h.Persistence["appendfsync"]), save,
		orQ(h.Persistence["aof_enabled"]), orQ(h.Persistence["rdb_bgsave_in_progress"]))
	for _, p := range []string{result.SystemGoWorkflows, result.SystemAsynq} {
		if v, ok := h.PeerVersions[p]; ok {
			fmt.Fprintf(out, "peer %s %s: %s\n", p, v, h.PeerSettings[p])
		}
	}
}

// LoadAvg returns the 1, 5 and 15 minute load averages: on a shared
// machine they say how much else ran meanwhile.
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func orQ(s string) string {
	if s == "" {
		return "?"
	}
	return s
}

func firstMatch(path, prefix string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == prefix {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
