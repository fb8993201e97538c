package retry

import (
	"testing"
	"time"
)

func TestDoublingDoublesToTheCap(t *testing.T) {
	want := []time.Duration{100, 100, 200, 400, 800, 1600, 3200, 5000, 5000}
	for n, w := range want {
		if got := Doubling(100*time.Millisecond, 5*time.Second, n); got != w*time.Millisecond {
			t.Errorf("Doubling(100ms, 5s, %d) = %s, want %s", n, got, w*time.Millisecond)
		}
	}
	if got := Doubling(time.Second, time.Minute, 1000); got != time.Minute {
		t.Errorf("Doubling after 1000 retries = %s, want the cap", got)
	}
	if got := Doubling(time.Second, 500*time.Millisecond, 1); got != 500*time.Millisecond {
		t.Errorf("a cap below the first wait wins: got %s", got)
	}
}

func TestNewStaysWithinItsBoundsAndNeverStops(t *testing.T) {
	b := New(50*time.Millisecond, time.Second)
	for i := range 50 {
		d := b.NextBackOff()
		// ±50% jitter around an interval between 50ms and 1s.
		if d < 25*time.Millisecond || d > 1500*time.Millisecond {
			t.Fatalf("retry %d: %s out of bounds", i, d)
		}
	}
}
