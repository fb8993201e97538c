// Package storetest holds the test helpers that the tests of package queue
// and its conformance suite, queue/queuetest, share. It does not import
// queue, so that queue's own tests can use it.
package storetest

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

// After lets d pass and then requires cond. With advance (a virtual clock)
// it moves the clock by d and checks cond once; with advance nil, time runs
// by itself and it polls cond until it holds, failing after d plus a
// generous margin of 5 s.
func After(tb testing.TB, d time.Duration, advance func(time.Duration), what string, cond func() bool) {
	tb.Helper()
	if advance != nil {
		advance(d)
		if !cond() {
			tb.Fatalf("after %v: %s did not hold", d, what)
		}
		return
	}
	deadline := time.Now().Add(d + 5*time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("after %v (+5s margin): %s did not hold", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// FetchDefaults fills the zero fields that every fetch request of a test
// shares: the request id (from newID), Max (10) and the lock timeout (lock).
func FetchDefaults(requestID *string, max *int, lockTimeout *time.Duration, newID func() string, lock time.Duration) {
	if *requestID == "" {
		*requestID = newID()
	}
	if *max == 0 {
		*max = 10
	}
	if *lockTimeout == 0 {
		*lockTimeout = lock
	}
}

// WantErr fails unless errors.Is(err, want) (want nil: no error).
func WantErr(tb testing.TB, what string, err, want error) {
	tb.Helper()
	if want == nil {
		if err != nil {
			tb.Fatalf("%s: unexpected error %v", what, err)
		}
		return
	}
	if !errors.Is(err, want) {
		tb.Fatalf("%s: error = %v, want %v", what, err, want)
	}
}

// WantEqual fails with both values unless got equals want (reflect.DeepEqual).
func WantEqual[T any](tb testing.TB, what string, want, got T) {
	tb.Helper()
	if !reflect.DeepEqual(want, got) {
		tb.Fatalf("%s:\n want %#v\n  got %#v", what, want, got)
	}
}
