package engine

import (
	"encoding/json"
	"testing"

	"github.com/duroworker/duroworker/internal/replay"
)

// The engine spells out, for its readers, constants the replay engine owns;
// they must stay equal.
func TestConstantsMatchTheReplayEngine(t *testing.T) {
	strs := map[string][2]string{
		"CategoryApplication":       {CategoryApplication, replay.CategoryApplication},
		"CategoryInfrastructure":    {CategoryInfrastructure, replay.CategoryInfrastructure},
		"CategoryConfiguration":     {CategoryConfiguration, replay.CategoryConfiguration},
		"CategoryPoison":            {CategoryPoison, replay.CategoryPoison},
		"KindActivityFailed":        {KindActivityFailed, replay.KindActivityFailed},
		"KindOrchestrationFailed":   {KindOrchestrationFailed, replay.KindOrchestrationFailed},
		"KindPanicked":              {KindPanicked, replay.KindPanicked},
		"KindCancelled":             {KindCancelled, replay.KindCancelled},
		"KindTimeout":               {KindTimeout, replay.KindTimeout},
		"KindNondeterminism":        {KindNondeterminism, replay.KindNondeterminism},
		"KindStore":                 {KindStore, replay.KindStore},
		"KindPoisonOrchestration":   {KindPoisonOrchestration, replay.KindPoisonOrchestration},
		"KindPoisonActivity":        {KindPoisonActivity, replay.KindPoisonActivity},
		"KindFailedDeserialization": {KindFailedDeserialization, replay.KindFailedDeserialization},
		"SubOrchestrationMarker":    {SubOrchestrationMarker, replay.SubOrchestrationMarker},
		"Version":                   {Version, replay.Version},
	}
	for name, v := range strs {
		if v[0] != v[1] {
			t.Errorf("engine.%s = %q, replay.%s = %q", name, v[0], name, v[1])
		}
	}
	ints := map[string][2]int{
		"MaxPayloadBytes":      {MaxPayloadBytes, replay.MaxPayloadBytes},
		"MaxCarryForward":      {MaxCarryForward, replay.MaxCarryForward},
		"MaxCustomStatusBytes": {MaxCustomStatusBytes, replay.MaxCustomStatusBytes},
		"MaxKVKeys":            {MaxKVKeys, replay.MaxKVKeys},
		"MaxKVValueBytes":      {MaxKVValueBytes, replay.MaxKVValueBytes},
		"MaxKVKeyBytes":        {MaxKVKeyBytes, replay.MaxKVKeyBytes},
		"MaxTagBytes":          {MaxTagBytes, replay.MaxTagBytes},
		"MaxSessionIDBytes":    {MaxSessionIDBytes, replay.MaxSessionIDBytes},
	}
	for name, v := range ints {
		if v[0] != v[1] {
			t.Errorf("engine.%s = %d, replay.%s = %d", name, v[0], name, v[1])
		}
	}
}

// ErrorDetails and replay.Failure convert into each other, so their fields
// must stay the same, in order, with the same JSON names.
func TestErrorDetailsMatchesTheStoredFailure(t *testing.T) {
	d := &ErrorDetails{Category: CategoryPoison, Kind: KindPoisonActivity, Message: "m", Retryable: true,
		Attempts: 3, MaxAttempts: 2, Instance: "i", Execution: 4, Activity: "a", ActivityID: 5}
	a, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal((*replay.Failure)(d))
	if err != nil {
		t.Fatal(err)
	}
	if string(a) != string(b) || d.Error() != (*replay.Failure)(d).Error() {
		t.Fatalf("engine %s %q\nreplay %s %q", a, d.Error(), b, (*replay.Failure)(d).Error())
	}
}
