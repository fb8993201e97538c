package queue

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestPreludeDefinitions checks the rules preludeFor relies on against
// common.lua: the definitions put together are the file again; a name is
// defined once; and a statement at column 0 that is not a definition, an
// "end", a closing bracket or a comment only touches the names of the
// definition it is read into (LOCK_FIELDS[...] = ... after LOCK_FIELDS).
func TestPreludeDefinitions(t *testing.T) {
	src := luaFile("common.lua")
	defs := parsePrelude(src)
	var texts []string
	seen := map[string]bool{}
	for _, d := range defs {
		texts = append(texts, d.text)
		for _, n := range d.names {
			if seen[n] {
				t.Errorf("common.lua defines %s twice", n)
			}
			seen[n] = true
		}
	}
	if strings.Join(texts, "\n") != src {
		t.Fatal("the definitions joined are not common.lua")
	}
	if len(defs) < 50 || !seen["P"] || !seen["lock_ready_work"] || !seen["now_ms"] {
		t.Fatalf("parsed %d definitions (names %v): the parser lost some", len(defs), seen)
	}
	if strings.Contains(src, "[[") {
		t.Error("common.lua has a long string or comment: a line inside one could be read as a definition")
	}
	other := regexp.MustCompile(`^(end\b|[})\]]|--|$|\s)`)
	assigned := regexp.MustCompile(`^([A-Za-z_]\w*)`)
	for _, d := range defs {
		for i, line := range strings.Split(d.text, "\n") {
			if definitionRE.MatchString(line) || other.MatchString(line) {
				continue
			}
			m := assigned.FindStringSubmatch(line)
			if m == nil || !slices.Contains(d.names, m[1]) {
				t.Errorf("common.lua: a statement at column 0 outside a definition of its own name, in %v (line %d of it): %q", d.names, i+1, line)
			}
		}
	}
}

// TestPreludeForKeepsWhatIsUsed: a definition is kept when the body or a
// kept definition names it, in common.lua's order, and dropped otherwise.
func TestPreludeForKeepsWhatIsUsed(t *testing.T) {
	defs := parsePrelude(strings.Join([]string{
		"-- opening comment",
		"local P = KEYS[1]",
		"",
		"-- k_a: a key",
		"local function k_a(id) return P .. 'a:' .. id end",
		"local UNUSED = 7",
		"local X, Y = 1, 2",
		"local LIST = {'a'}",
		"LIST[2] = 'b'",
		"-- uses k_a",
		"local function both(id)",
		"  return k_a(id), X",
		"end",
	}, "\n"))
	if len(defs) != 6 {
		t.Fatalf("%d definitions, want 6: %+v", len(defs), defs)
	}
	got := preludeFor(defs, "return both(ARGV[1])")
	want := "-- opening comment\nlocal P = KEYS[1]\n\n-- k_a: a key\nlocal function k_a(id) return P .. 'a:' .. id end\n" +
		"local X, Y = 1, 2\n-- uses k_a\nlocal function both(id)\n  return k_a(id), X\nend"
	if got != want {
		t.Errorf("preludeFor:\n%s\nwant:\n%s", got, want)
	}
	if got := preludeFor(defs, "return #LIST"); !strings.Contains(got, "LIST[2] = 'b'") || strings.Contains(got, "k_a") {
		t.Errorf("preludeFor(LIST):\n%s", got)
	}
}

// TestScriptsGetSmallerPreludes: every script's prelude is a part of
// common.lua, and the hot path's scripts leave most of it out.
func TestScriptsGetSmallerPreludes(t *testing.T) {
	full := len(luaFile("common.lua"))
	for _, name := range []string{"create.lua", "fetch_orch.lua", "ack_work.lua", "ack_orch.lua"} {
		src := scriptSource(name)
		body := luaFile(name)
		prelude := len(src) - len(body)
		if prelude >= full*3/4 {
			t.Errorf("%s: prelude of %d bytes of common.lua's %d", name, prelude, full)
		}
		if !strings.HasSuffix(strings.TrimRight(src, "\n"), strings.TrimRight(body, "\n")) {
			t.Errorf("%s: the script body is not at the end of its source", name)
		}
	}
}
