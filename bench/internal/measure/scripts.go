package measure

import (
	"crypto/sha1"
	"encoding/hex"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
)

// scriptNames maps the SHA1 of every script source a RoundTrips hook saw
// (EVAL, SCRIPT LOAD) to its name; shared by every counter of the process.
var scriptNames sync.Map

// scriptHeader is the first line of each of duroworker's Lua files
// ("-- ack_orch.lua: ..."); a script is a composition of files (common.lua
// first), named after the last one.
var scriptHeader = regexp.MustCompile(`(?m)^--\s*([A-Za-z0-9_./-]+\.lua):`)

// ScriptName returns the name known for the script with that SHA (see
// nameFromSource); "" when this process never saw its source.
func ScriptName(sha string) string {
	if v, ok := scriptNames.Load(strings.ToLower(sha)); ok {
		return v.(string)
	}
	return ""
}

// nameFromSource is the name of a script source: its last "-- x.lua"
// header, else its first line of code (trimmed to 40 characters).
func nameFromSource(src string) string {
	if m := scriptHeader.FindAllStringSubmatch(src, -1); len(m) > 0 {
		return strings.TrimSuffix(m[len(m)-1][1], ".lua")
	}
	for _, line := range strings.Split(src, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "--") {
			continue
		}
		if len(line) > 40 {
			line = line[:40] + "…"
		}
		return "«" + line + "»"
	}
	return ""
}

// noteScript counts a script call and learns a script's name from its
// source: EVALSHA sha ..., EVAL src ..., SCRIPT LOAD src.
func (c *RoundTrips) noteScript(args []any) {
	if len(args) < 2 {
		return
	}
	name, _ := args[0].(string)
	var sha string
	switch strings.ToLower(name) {
	case "evalsha", "evalsha_ro":
		sha, _ = args[1].(string)
		sha = strings.ToLower(sha)
	case "eval", "eval_ro":
		src, _ := args[1].(string)
		sha = c.learn(src)
	case "script":
		if sub, _ := args[1].(string); strings.EqualFold(sub, "load") && len(args) >= 3 {
			src, _ := args[2].(string)
			c.learn(src)
		}
		return
	default:
		return
	}
	if sha == "" {
		return
	}
	v, ok := c.scripts.Load(sha)
	if !ok {
		v, _ = c.scripts.LoadOrStore(sha, new(atomic.Int64))
	}
	v.(*atomic.Int64).Add(1)
}

func (c *RoundTrips) learn(src string) string {
	if src == "" {
		return ""
	}
	sum := sha1.Sum([]byte(src))
	sha := hex.EncodeToString(sum[:])
	if _, ok := scriptNames.Load(sha); !ok {
		scriptNames.Store(sha, nameFromSource(src))
	}
	return sha
}

// ScriptCalls returns the script calls sent so far, by SHA.
func (c *RoundTrips) ScriptCalls() map[string]int64 {
	out := map[string]int64{}
	c.scripts.Range(func(k, v any) bool {
		out[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return out
}
