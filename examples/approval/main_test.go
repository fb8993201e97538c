package main

import (
	"testing"

	"github.com/duroworker/duroworker/examples/internal/demotest"
)

// TestRun runs the scenario and expects exit code 0 (on miniredis, or on
// the Redis at $DUROWORKER_EXAMPLES_REDIS when it is set).
func TestRun(t *testing.T) { demotest.Run(t, run) }
