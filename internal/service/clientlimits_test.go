package service

import (
	"testing"
	"time"
)

// TestCallLimitRate walks one rate (0.5/s, bursts of 3, room for two
// clients) through explicit instants: a client spends its burst, waits
// exactly as long as it is told, clients do not share buckets, and the
// least recently seen client is the one forgotten when a third arrives.
func TestCallLimitRate(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newCallLimit("acquire", "AcquireLease calls", ClientLimits{Rate: 0.5, Burst: 3}, 2)
	for i, step := range []struct {
		key  string
		at   time.Duration
		want time.Duration
	}{
		{"a", 0, 0},
		{"a", 0, 0},
		{"a", 0, 0},
		{"a", 0, 2 * time.Second},               // burst spent
		{"a", time.Second, time.Second},         // half a token back; a refusal spends nothing
		{"b", time.Second, 0},                   // b has its own bucket
		{"a", 2 * time.Second, 0},               // one token back, taken
		{"a", 2 * time.Second, 2 * time.Second}, // and gone again
		{"c", 2 * time.Second, 0},               // a third client: b, seen least recently, is forgotten
		{"a", 2 * time.Second, 2 * time.Second}, // a is still remembered, still empty
		{"b", 2 * time.Second, 0},               // b is back with a full bucket...
		{"b", 2 * time.Second, 0},               //
		{"b", 2 * time.Second, 0},               //
		{"b", 2 * time.Second, 2 * time.Second}, // ...of three
		{"a", 2*time.Second + 500*time.Millisecond, 1500 * time.Millisecond}, // c was forgotten for b, a kept
	} {
		s, got, full := l.take(step.key, t0.Add(step.at))
		if got != step.want || full {
			t.Fatalf("step %d: %s at +%v waits %v (full %v), want %v", i, step.key, step.at, got, full, step.want)
		}
		if s != nil {
			l.done(step.key, s, time.Millisecond)
		}
	}
}

// TestCallLimitInFlight: a client at its cap is refused until one of its
// calls ends, another client is not, and a client forgotten by the LRU
// while its calls are under way keeps its count.
func TestCallLimitInFlight(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newCallLimit("still", "RenderStill calls", ClientLimits{InFlight: 2}, 1)
	take := func(key string) *clientState {
		t.Helper()
		s, wait, full := l.take(key, t0)
		if s == nil {
			t.Fatalf("%s refused (wait %v, full %v), want admitted", key, wait, full)
		}
		return s
	}
	full := func(key string) {
		t.Helper()
		if s, _, full := l.take(key, t0); s != nil || !full {
			t.Fatalf("%s admitted, want refused at its cap", key)
		}
	}
	a1, a2 := take("a"), take("a")
	full("a")
	b := take("b") // b evicts a from the one-entry LRU: a is busy, not lost
	full("a")
	l.done("a", a1, 100*time.Millisecond)
	a3 := take("a")
	full("a")
	for _, c := range []struct {
		key string
		s   *clientState
	}{{"a", a2}, {"a", a3}, {"b", b}} {
		l.done(c.key, c.s, 100*time.Millisecond)
	}
	if len(l.busy) != 0 {
		t.Fatalf("%d clients left busy after every call ended", len(l.busy))
	}
	if l.meanCall != 100*time.Millisecond {
		t.Fatalf("mean call %v, want 100ms", l.meanCall)
	}
}
