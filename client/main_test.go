package client_test

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/whirl-dev/whirl/internal/lease"
	"github.com/whirl-dev/whirl/internal/service"
	"github.com/whirl-dev/whirl/internal/testserver"
)

// exampleAddr is the address of the server the Example functions talk to;
// TestMain starts it before any test or example runs. Example functions
// cannot take a *testing.T, so they cannot start their own.
var exampleAddr string

// exampleToken is the admin bearer token of the example server.
const exampleToken = "example-admin-token"

func TestMain(m *testing.M) {
	leases := lease.NewMemory(lease.Config{Capacity: 5})
	srv, err := testserver.Serve(service.Config{Leases: leases, AdminToken: exampleToken})
	if err != nil {
		fmt.Fprintln(os.Stderr, "example server:", err)
		os.Exit(1)
	}
	exampleAddr = srv.Addr

	code := m.Run()

	srv.Stop()
	_ = leases.Close()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
