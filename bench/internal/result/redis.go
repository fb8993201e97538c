package result

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// RedisCost is what the Redis server did over a measured window: the
// deltas of INFO commandstats (every command the server ran, those run by
// Lua scripts included under their own names) and the scripts that the
// measured system's clients called, by SHA, named where the bench saw
// their source. Per is the number of orchestrations (tasks) the window
// completed, which the report divides by.
type RedisCost struct {
	Per      int64         `json:"per"`
	Commands []CommandCost `json:"commands"`
	Scripts  []ScriptCost  `json:"scripts,omitempty"`
	// Polls is how many completion polls of the bench itself the window
	// holds (one command each, included in Commands).
	Polls int64 `json:"polls,omitempty"`
}

// CommandCost is the delta of one INFO commandstats line over a window.
type CommandCost struct {
	Name  string `json:"name"`
	Calls int64  `json:"calls"`
	Usec  int64  `json:"usec"`
}

// ScriptCost counts the calls of one Lua script (EVALSHA or EVAL) that the
// system's clients sent over a window. Redis 7 keeps no time per script:
// the time of all scripts is the commandstats line of evalsha (and eval).
type ScriptCost struct {
	SHA   string `json:"sha"`
	Name  string `json:"name,omitempty"`
	Calls int64  `json:"calls"`
}

// Label is the script's name, or its SHA's first 12 characters.
func (s ScriptCost) Label() string {
	if s.Name != "" {
		return s.Name
	}
	return "sha " + s.SHA[:min(len(s.SHA), 12)]
}

// Cost kinds of a CostAggregate.
const (
	CostCommand = "command"
	CostScript  = "script"
)

// CostAggregate is the median over runs of one command's or script's
// calls and server time per orchestration (Usec is 0 for scripts: Redis
// does not time them apart).
type CostAggregate struct {
	Kind  string  `json:"kind"`
	Name  string  `json:"name"`
	Calls float64 `json:"calls_per_orch"`
	Usec  float64 `json:"usec_per_orch,omitempty"`
}

// aggregateCosts takes the per-orchestration medians over the runs that
// have a cost; a command or script missing from one of them counts 0
// there. Commands come first, by time, then scripts, by calls.
func aggregateCosts(runs []*RedisCost) []CostAggregate {
	type key struct{ kind, name string }
	calls := map[key][]float64{}
	usec := map[key][]float64{}
	var order []key
	n := 0
	for _, c := range runs {
		if c == nil || c.Per <= 0 {
			continue
		}
		per := float64(c.Per)
		add := func(k key, cl, us int64) {
			if _, ok := calls[k]; !ok {
				order = append(order, k)
				calls[k] = make([]float64, n) // zeros for earlier runs
				usec[k] = make([]float64, n)
			}
			calls[k] = append(calls[k], float64(cl)/per)
			usec[k] = append(usec[k], float64(us)/per)
		}
		for _, cmd := range c.Commands {
			add(key{CostCommand, cmd.Name}, cmd.Calls, cmd.Usec)
		}
		scripts := map[string]int64{}
		for _, s := range c.Scripts {
			scripts[s.Label()] += s.Calls
		}
		for name, cl := range scripts {
			add(key{CostScript, name}, cl, 0)
		}
		n++
		for k := range calls { // zeros for what this run did not have
			if len(calls[k]) < n {
				calls[k] = append(calls[k], 0)
				usec[k] = append(usec[k], 0)
			}
		}
	}
	out := make([]CostAggregate, 0, len(order))
	for _, k := range order {
		c, _, _ := medianMinMax(calls[k])
		u, _, _ := medianMinMax(usec[k])
		out = append(out, CostAggregate{Kind: k.kind, Name: k.name, Calls: c, Usec: u})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind == CostCommand
		}
		if out[i].Usec != out[j].Usec {
			return out[i].Usec > out[j].Usec
		}
		if out[i].Calls != out[j].Calls {
			return out[i].Calls > out[j].Calls
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// WriteCosts writes the Redis cost of every aggregate that has one: per
// orchestration, the calls and server microseconds of each command (at
// most limit commands, by time; 0: all) and the calls of each script.
// With markdown it writes one table per case and system. The time of
// evalsha (and eval) is that of the scripts with the commands they run,
// which are also counted under their own names: the times do not add up.
func WriteCosts(w io.Writer, aggs []Aggregate, limit int, markdown bool) {
	for _, a := range aggs {
		if len(a.Redis) == 0 {
			continue
		}
		label := a.Case + " · " + a.System
		if a.Variant != "" {
			label += " (" + a.Variant + ")"
		}
		var cmds, scripts []CostAggregate
		var totalCalls float64
		for _, c := range a.Redis {
			if c.Kind == CostScript {
				scripts = append(scripts, c)
				continue
			}
			totalCalls += c.Calls
			cmds = append(cmds, c)
		}
		shown := cmds
		if limit > 0 && len(shown) > limit {
			shown = shown[:limit]
		}
		if markdown {
			fmt.Fprintf(w, "\n**%s**: %s commands per orchestration\n\n", label, FormatValue(totalCalls))
			fmt.Fprintln(w, "| command | calls/orch | µs/orch | µs/call |")
			fmt.Fprintln(w, "|---|---|---|---|")
			for _, c := range shown {
				fmt.Fprintf(w, "| %s | %s | %s | %s |\n", c.Name, FormatValue(c.Calls), FormatValue(c.Usec), perCall(c))
			}
			for _, s := range scripts {
				fmt.Fprintf(w, "| script %s | %s | | |\n", s.Name, FormatValue(s.Calls))
			}
			continue
		}
		fmt.Fprintf(w, "%s: %s commands per orchestration\n", label, FormatValue(totalCalls))
		parts := make([]string, 0, len(shown))
		for _, c := range shown {
			parts = append(parts, fmt.Sprintf("%s %s/%s", c.Name, FormatValue(c.Calls), FormatValue(c.Usec)))
		}
		fmt.Fprintf(w, "    commands (calls/orch, µs/orch): %s\n", strings.Join(parts, ", "))
		if len(scripts) > 0 {
			parts = parts[:0]
			for _, s := range scripts {
				parts = append(parts, fmt.Sprintf("%s %s", s.Name, FormatValue(s.Calls)))
			}
			fmt.Fprintf(w, "    scripts (calls/orch): %s\n", strings.Join(parts, ", "))
		}
	}
}

func perCall(c CostAggregate) string {
	if c.Calls <= 0 {
		return ""
	}
	return FormatValue(c.Usec / c.Calls)
}
