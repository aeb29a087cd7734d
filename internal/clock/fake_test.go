package clock_test

import (
	"testing"
	"time"

	"github.com/whirl-dev/whirl/internal/clock"
)

func TestFakeRunsDueTimersInOrder(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := clock.NewFake(start)
	var fired []string
	var at []time.Duration
	record := func(name string) func() {
		return func() { fired = append(fired, name); at = append(at, c.Now().Sub(start)) }
	}
	c.AfterFunc(3*time.Second, record("3s"))
	c.AfterFunc(time.Second, func() {
		record("1s")()
		// A timer armed by a callback inside the window fires in the same Advance.
		c.AfterFunc(time.Second, record("1s+1s"))
	})
	stopped := c.AfterFunc(2*time.Second, record("stopped"))
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop must report true once, then false")
	}
	c.AfterFunc(10*time.Second, record("10s"))

	c.Advance(5 * time.Second)
	want := []string{"1s", "1s+1s", "3s"}
	if len(fired) != len(want) {
		t.Fatalf("fired %v, want %v", fired, want)
	}
	for i := range want {
		if fired[i] != want[i] {
			t.Fatalf("fired %v, want %v", fired, want)
		}
	}
	if at[0] != time.Second || at[1] != 2*time.Second || at[2] != 3*time.Second {
		t.Fatalf("callbacks saw times %v, want each its own deadline", at)
	}
	if got := c.Now().Sub(start); got != 5*time.Second {
		t.Fatalf("Now after Advance(5s) = +%v", got)
	}
}
