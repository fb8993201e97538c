package engine

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/duroworker/duroworker/internal/replay"
)

func nop(ctx *OrchestrationContext, in string) (string, error) { return in, nil }

func TestRegistryBuildErrors(t *testing.T) {
	tests := []struct {
		name    string
		build   func() error
		wantErr string
	}{
		{"duplicate version", func() error {
			_, err := NewOrchestrationRegistry().Register("A", nop).Register("A", nop).Build()
			return err
		}, `version 1.0.0 registered twice`},
		{"non-increasing version", func() error {
			_, err := NewOrchestrationRegistry().RegisterVersioned("A", "2.0.0", nop).RegisterVersioned("A", "1.5.0", nop).Build()
			return err
		}, `version 1.5.0 registered after 2.0.0`},
		{"invalid semver", func() error {
			_, err := NewOrchestrationRegistry().RegisterVersioned("A", "v1", nop).Build()
			return err
		}, `not a semver version`},
		{"reserved orchestration name", func() error {
			_, err := NewOrchestrationRegistry().Register("__duroworker:x", nop).Build()
			return err
		}, `reserved`},
		{"empty name", func() error {
			_, err := NewOrchestrationRegistry().Register("", nop).Build()
			return err
		}, `orchestration`},
		{"policy for unknown version", func() error {
			_, err := NewOrchestrationRegistry().Register("A", nop).SetPolicy("A", Exact("3.0.0")).Build()
			return err
		}, `policy exact(3.0.0) names a version that is not registered`},
		{"policy for unknown name", func() error {
			_, err := NewOrchestrationRegistry().SetPolicy("B", Latest()).Build()
			return err
		}, `unregistered name`},
		{"nil function", func() error {
			_, err := NewOrchestrationRegistry().Register("A", nil).Build()
			return err
		}, `function is nil`},
		{"duplicate activity", func() error {
			f := func(*ActivityContext, string) (string, error) { return "", nil }
			_, err := NewActivityRegistry().Register("X", f).Register("X", f).Build()
			return err
		}, `activity "X" registered twice`},
		{"control characters in an orchestration name", func() error {
			_, err := NewOrchestrationRegistry().Register("A\x1b]0;pwned\x07", nop).Build()
			return err
		}, `control character U+001B`},
		{"bidi override in an activity name", func() error {
			f := func(*ActivityContext, string) (string, error) { return "", nil }
			_, err := NewActivityRegistry().Register("charge\u202eexe.fdp", f).Build()
			return err
		}, `bidirectional text control U+202E`},
		{"reserved activity", func() error {
			f := func(*ActivityContext, string) (string, error) { return "", nil }
			_, err := NewActivityRegistry().Register("__duroworker_x", f).Build()
			return err
		}, `reserved`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.build()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestRegistryReportsEveryMistake(t *testing.T) {
	_, err := NewOrchestrationRegistry().Register("A", nop).Register("A", nop).RegisterVersioned("B", "x", nop).Build()
	if err == nil || !strings.Contains(err.Error(), "twice") || !strings.Contains(err.Error(), "semver") {
		t.Fatalf("want both mistakes reported, got %v", err)
	}
}

func TestRegistryResolve(t *testing.T) {
	r := NewOrchestrationRegistry().
		Register("M", nop).
		RegisterVersioned("M", "1.0.1", nop).
		RegisterVersioned("M", "1.0.2", nop).
		RegisterVersioned("P", "1.0.0", nop).
		RegisterVersioned("P", "2.0.0", nop).
		SetPolicy("P", Exact("1.0.0")).
		MustBuild()
	tests := []struct {
		name, orch, version, want string
		wantErr                   bool
	}{
		{"latest by default", "M", "", "1.0.2", false},
		{"explicit old version", "M", "1.0.0", "1.0.0", false},
		{"exact policy pins new starts", "P", "", "1.0.0", false},
		{"explicit version beats policy", "P", "2.0.0", "2.0.0", false},
		{"missing version", "M", "1.0.3", "", true},
		{"unknown name", "Q", "", "", true},
		{"malformed version", "M", "one", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fn, v, err := r.Resolve(tt.orch, tt.version)
			if tt.wantErr {
				if !errors.Is(err, ErrNotRegistered) {
					t.Fatalf("err = %v, want ErrNotRegistered", err)
				}
				return
			}
			if err != nil || fn == nil || v != tt.want {
				t.Fatalf("Resolve = %v, %q, %v; want %q", fn != nil, v, err, tt.want)
			}
		})
	}
	if got := strings.Join(r.Versions("M"), ","); got != "1.0.0,1.0.1,1.0.2" {
		t.Fatalf("Versions = %s", got)
	}
	if got := strings.Join(r.Names(), ","); got != "M,P" {
		t.Fatalf("Names = %s", got)
	}
}

func TestCodec(t *testing.T) {
	type pair struct {
		A int    `json:"a"`
		B string `json:"b"`
	}
	if s, _ := Encode("plain"); s != "plain" {
		t.Fatalf("string encodes as %q", s)
	}
	if s, _ := Encode(pair{1, "x"}); s != `{"a":1,"b":"x"}` {
		t.Fatalf("struct encodes as %q", s)
	}
	if v, _ := Decode[string](`"quoted"`); v != "quoted" {
		t.Fatalf("quoted string decodes as %q", v)
	}
	if v, _ := Decode[string](`raw text`); v != "raw text" {
		t.Fatalf("raw string decodes as %q", v)
	}
	if v, err := Decode[pair](`{"a":2,"b":"y"}`); err != nil || v != (pair{2, "y"}) {
		t.Fatalf("struct decodes as %+v, %v", v, err)
	}
	if _, err := Decode[pair](`{"a":"wrong"}`); err == nil || !strings.Contains(err.Error(), "engine.pair") {
		t.Fatalf("malformed payload error %v", err)
	}
	if _, err := Encode(func() {}); err == nil {
		t.Fatal("encoding a func must fail")
	}
}

func TestDecodeRejectsUnknownAndCorrupt(t *testing.T) {
	tests := []struct {
		name    string
		raw     []string
		wantErr string
	}{
		{"unknown event kind from a newer engine", []string{
			`{"id":1,"kind":"OrchestrationStarted","ts":1,"engine":"0.1.0","name":"O"}`,
			`{"id":2,"kind":"QuantumEntangled","ts":2,"engine":"9.0.0"}`,
		}, `unknown history event kind "QuantumEntangled"`},
		{"malformed json", []string{`{"id":1,`}, `decoding history event`},
		{"ids out of sequence", []string{
			`{"id":1,"kind":"OrchestrationStarted","ts":1,"engine":"0.1.0","name":"O"}`,
			`{"id":3,"kind":"TimerCreated","ts":2,"engine":"0.1.0"}`,
		}, `out of sequence`},
		{"first event not a start", []string{`{"id":1,"kind":"TimerCreated","ts":1,"engine":"0.1.0"}`}, `first event`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := replay.DecodeHistory(tt.raw)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
	var uk *replay.UnknownKindError
	if _, err := replay.DecodeMessage(`{"kind":"Teleport"}`); !errors.As(err, &uk) {
		t.Fatalf("unknown message kind: %v", err)
	}
	for _, bad := range []string{`{"kind":"Start"}`, `{"kind":"ActivityCompleted","execution":1}`, `{"kind":"ActivityFailed","execution":1,"event_id":2}`, `not json`} {
		if _, err := replay.DecodeMessage(bad); err == nil {
			t.Errorf("DecodeMessage(%s) accepted", bad)
		}
	}
}

func TestErrorDisplayStrings(t *testing.T) {
	tests := []struct {
		d    ErrorDetails
		want string
	}{
		{ErrorDetails{Category: CategoryApplication, Kind: KindActivityFailed, Message: "x"}, "x"},
		{ErrorDetails{Category: CategoryApplication, Kind: KindPanicked, Message: "p"}, "orchestration panicked: p"},
		{ErrorDetails{Category: CategoryApplication, Kind: KindCancelled, Message: "r"}, "cancelled: r"},
		{ErrorDetails{Category: CategoryInfrastructure, Kind: KindStore, Message: "m"}, "infrastructure: m"},
		{ErrorDetails{Category: CategoryConfiguration, Kind: KindNondeterminism, Message: "n"}, "nondeterministic: n"},
		{ErrorDetails{Category: CategoryPoison, Kind: KindPoisonOrchestration, Instance: "i", Attempts: 11, MaxAttempts: 10, Message: "orchestration \"X\" is not registered"},
			`poison: orchestration i exceeded 11 attempts (max 10): orchestration "X" is not registered`},
		{ErrorDetails{Category: CategoryPoison, Kind: KindPoisonOrchestration, Instance: "i", Attempts: 1, MaxAttempts: 10, Message: "the instance has no valid start message"},
			"poison: orchestration i gave up at attempt 1 (max 10): the instance has no valid start message"},
		{ErrorDetails{Category: CategoryPoison, Kind: KindPoisonActivity, Instance: "i", Activity: "A", ActivityID: 2, Attempts: 2, MaxAttempts: 1},
			"poison: activity A#2 of orchestration i exceeded 2 attempts (max 1)"},
		{ErrorDetails{Category: CategoryPoison, Kind: KindFailedDeserialization, Instance: "i", Attempts: 1, MaxAttempts: 10},
			"poison: orchestration i history deserialization failed after 1 attempt (max 10)"},
		{ErrorDetails{Category: CategoryPoison, Kind: KindFailedDeserialization, Instance: "i", Attempts: 3, MaxAttempts: 2},
			"poison: orchestration i history deserialization failed after 3 attempts (max 2)"},
	}
	for _, tt := range tests {
		if got := tt.d.Error(); got != tt.want {
			t.Errorf("%+v: got %q want %q", tt.d, got, tt.want)
		}
	}
}

func TestDetailsOfKeepsWrappingContext(t *testing.T) {
	inner := ApplicationError(KindActivityFailed, "no car")
	if got := DetailsOf(fmt.Errorf("booking: %w", inner), KindOrchestrationFailed); got.Error() != "booking: no car" || got.Kind != KindOrchestrationFailed {
		t.Fatalf("wrapped application error: %+v", got)
	}
	if got := DetailsOf(inner, KindOrchestrationFailed); got != inner {
		t.Fatal("a bare ErrorDetails must pass through")
	}
	poison := &ErrorDetails{Category: CategoryPoison, Kind: KindPoisonActivity}
	if got := DetailsOf(fmt.Errorf("x: %w", poison), KindOrchestrationFailed); got != poison {
		t.Fatal("a wrapped system failure keeps its category")
	}
}
