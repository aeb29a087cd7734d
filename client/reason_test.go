package client_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/whirl-dev/whirl/client"
	"github.com/whirl-dev/whirl/internal/lease"
	"github.com/whirl-dev/whirl/internal/service"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// TestReason: the reason the server gave comes through each kind of error
// the client returns, wrapped or not; errors without one give UNSPECIFIED.
func TestReason(t *testing.T) {
	reg := lease.NewMemory(lease.Config{Capacity: 1})
	t.Cleanup(func() { _ = reg.Close() })
	c := dial(t, startServer(t, service.Config{Leases: reg}).Addr)
	if _, err := c.Acquire(t.Context(), client.AcquireOptions{}); err != nil {
		t.Fatal(err)
	}
	_, exhausted := c.Acquire(t.Context(), client.AcquireOptions{})
	_, notFound := c.Renew(t.Context(), lease.NewToken())
	_, badRequest := c.Renew(t.Context(), "not-a-token")
	for _, tt := range []struct {
		name string
		err  error
		want whirlv1.ErrorReason
	}{
		{"exhausted", exhausted, whirlv1.ErrorReason_LEASE_CAPACITY},
		{"not found", notFound, whirlv1.ErrorReason_LEASE_NOT_FOUND},
		{"not found, wrapped", fmt.Errorf("renewing: %w", notFound), whirlv1.ErrorReason_LEASE_NOT_FOUND},
		{"bad request", badRequest, whirlv1.ErrorReason_BAD_REQUEST},
		{"nil", nil, whirlv1.ErrorReason_ERROR_REASON_UNSPECIFIED},
		{"not a status", errors.New("disk full"), whirlv1.ErrorReason_ERROR_REASON_UNSPECIFIED},
	} {
		if got := client.Reason(tt.err); got != tt.want {
			t.Errorf("%s: Reason(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}
