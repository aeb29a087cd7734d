package client

import (
	"strings"
	"testing"
	"time"
)

func TestRetryDelay(t *testing.T) {
	const maxDelay = 2 * time.Second
	tests := []struct {
		hint     time.Duration
		min, max time.Duration
	}{
		// A short hint is respected, plus up to 20% jitter.
		{300 * time.Millisecond, 300 * time.Millisecond, 360 * time.Millisecond},
		// A long hint (a lease expiring in minutes) is capped, jittered below the cap.
		{4 * time.Minute, 1600 * time.Millisecond, maxDelay},
		// A hint just under the cap stays under it.
		{1900 * time.Millisecond, 1600 * time.Millisecond, maxDelay},
		// No hint: the fallback.
		{0, fallbackRetryDelay, fallbackRetryDelay * 6 / 5},
	}
	for _, tt := range tests {
		for _, u := range []float64{0, 0.25, 0.5, 0.999999} {
			d := retryDelay(tt.hint, maxDelay, u)
			if d < tt.min || d > tt.max {
				t.Errorf("retryDelay(%s, %s, %v) = %s, want %s..%s", tt.hint, maxDelay, u, d, tt.min, tt.max)
			}
		}
	}
	if a, b := retryDelay(time.Minute, maxDelay, 0.1), retryDelay(time.Minute, maxDelay, 0.9); a == b {
		t.Errorf("no jitter: %s both", a)
	}
}

func TestDefaultHolderIsValid(t *testing.T) {
	h := newOptions(nil).holder
	host, ok := strings.CutPrefix(h, DefaultHolder+"@")
	if !ok && h != DefaultHolder || len(host) > maxHostLabel || strings.ContainsAny(host, ". ") {
		t.Errorf("default holder %q", h)
	}
}
