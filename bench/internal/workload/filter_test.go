package workload

import (
	"context"
	"testing"

	"github.com/duroworker/duroworker/internal/redistest"
)

// TestRunFilterFetchesOnlyCompatibleWork runs the workload small: every
// timed fetch must find its compatible item whatever waits elsewhere. No
// speed is asserted (that is what the program is for).
func TestRunFilterFetchesOnlyCompatibleWork(t *testing.T) {
	_, rdb := redistest.StartMini(t)
	res, err := runFilter(context.Background(), rdb, FilterOptions{Incompatible: 300, Samples: 20})
	if err != nil {
		t.Fatal(err)
	}
	for _, pair := range [][2]filterPhase{res.Orchestrations, res.Activities} {
		for _, p := range pair {
			if p.FetchedNothing != 0 || p.P50 <= 0 {
				t.Fatalf("%+v", p)
			}
		}
	}
	if n, _ := rdb.ZCard(context.Background(), "{bench-filter}:ready:o:bench::incompatible").Result(); n != 300 {
		t.Fatalf("incompatible items waiting: %d, want 300 untouched", n)
	}
}
