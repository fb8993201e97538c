package queue

import (
	"regexp"
	"strings"
)

// Every script runs common.lua in front of its own body, and Redis runs that
// prelude on every call: each of its ~90 top-level definitions creates a
// closure or a string when the script starts, about 12 µs of server time
// per call for the whole file. A script gets only the definitions it uses,
// directly or through another definition (preludeFor), which cuts the
// prelude of the hot scripts to between a seventh (create.lua) and a half
// (ack_orch.lua) of the file.
//
// The cut works on the text, with two rules that common.lua keeps (and
// TestPreludeDefinitions checks):
//   - a top-level definition starts with "local " at column 0 and runs to
//     the next one; every line of a function body is indented, so the
//     statements at column 0 between two definitions ("end", "}",
//     LOCK_FIELDS[...] = ...) belong to the one above, and the comment lines
//     just above a definition belong to it;
//   - a definition uses the names of common.lua that occur in its text.
//
// The second rule over-approximates (a name in a comment or a string
// counts), so a definition is never dropped that the script needs.

// preludeDefinition is one top-level definition of common.lua.
type preludeDefinition struct {
	// names are the locals it defines ("local a, b = ..." defines two).
	names []string
	// text is its source: the comment lines above it, the definition, and
	// any column-0 statements up to the next definition.
	text string
}

// definitionRE matches the first line of a top-level definition and
// captures the names it defines.
var definitionRE = regexp.MustCompile(`^local\s+(?:function\s+([A-Za-z_]\w*)|([A-Za-z_][\w, ]*?)\s*=)`)

// identifierRE matches the identifiers of Lua source.
var identifierRE = regexp.MustCompile(`[A-Za-z_]\w*`)

// parsePrelude splits common.lua into its top-level definitions, in
// order. Their texts joined with "\n" are src again.
func parsePrelude(src string) []preludeDefinition {
	var defs []preludeDefinition
	var names []string // of the definition being read; nil before the first
	var lines []string // its lines so far
	for _, line := range strings.Split(src, "\n") {
		m := definitionRE.FindStringSubmatch(line)
		if m == nil {
			lines = append(lines, line)
			continue
		}
		// The comment and blank lines at the end of lines are the new
		// definition's heading.
		head := len(lines)
		for head > 0 && (strings.HasPrefix(lines[head-1], "--") || strings.TrimSpace(lines[head-1]) == "") {
			head--
		}
		if names != nil || head > 0 {
			defs = append(defs, preludeDefinition{names: names, text: strings.Join(lines[:head], "\n")})
		}
		lines = append(append([]string(nil), lines[head:]...), line)
		if m[1] != "" {
			names = []string{m[1]}
		} else {
			names = nil
			for n := range strings.SplitSeq(m[2], ",") {
				names = append(names, strings.TrimSpace(n))
			}
		}
	}
	return append(defs, preludeDefinition{names: names, text: strings.Join(lines, "\n")})
}

// preludeFor returns the definitions of defs that body uses, directly or
// through other definitions, joined in their order in common.lua.
func preludeFor(defs []preludeDefinition, body string) string {
	definedBy := map[string]int{}
	for i, d := range defs {
		for _, n := range d.names {
			definedBy[n] = i
		}
	}
	need := make([]bool, len(defs))
	var visit func(text string)
	visit = func(text string) {
		for _, id := range identifierRE.FindAllString(text, -1) {
			if i, ok := definedBy[id]; ok && !need[i] {
				need[i] = true
				visit(defs[i].text)
			}
		}
	}
	visit(body)
	var out []string
	for i, d := range defs {
		// A text with no names is the file's opening comment: kept, it
		// costs nothing at run time.
		if need[i] || d.names == nil {
			out = append(out, d.text)
		}
	}
	return strings.Join(out, "\n")
}
