package service

import (
	"testing"
	"time"
)

// TestClientRate walks one limit (0.5/s, bursts of 3, room for two clients)
// through explicit instants: a client spends its burst, waits exactly as
// long as it is told, clients do not share buckets, and the least recently
// seen client is the one forgotten when a third arrives.
func TestClientRate(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := newClientRate("acquire_rate", "AcquireLease calls", 0.5, 3, 2)
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
		if got := r.take(step.key, t0.Add(step.at)); got != step.want {
			t.Fatalf("step %d: %s at +%v waits %v, want %v", i, step.key, step.at, got, step.want)
		}
	}
}
