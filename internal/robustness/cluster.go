package robustness

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/whirl-dev/whirl/internal/serverproc"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// Replica is one server binary that can be killed and restarted on the
// same gRPC and metrics addresses, so clients keep their connections.
type Replica struct {
	Index int
	// API and Admin are stubs over one connection that outlives restarts.
	API   whirlv1.AnimationServiceClient
	Admin whirlv1.LeaseAdminServiceClient

	bin  string
	args []string
	log  io.Writer
	conn *grpc.ClientConn

	mu  sync.Mutex
	srv *serverproc.Server // nil while down
}

// StartReplica starts bin with args (serverproc adds the listen addresses)
// and a metrics listener, writing its log to log.
func StartReplica(ctx context.Context, index int, bin string, args []string, log io.Writer) (*Replica, error) {
	r := &Replica{Index: index, bin: bin, args: args, log: log}
	srv, err := r.start(ctx, "--metrics-addr", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	// Later starts reuse these addresses (a later flag wins in serverproc).
	r.args = append(r.args, "--addr", srv.Addr, "--metrics-addr", srv.MetricsAddr)
	conn, err := grpc.NewClient(srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		srv.Kill()
		return nil, err
	}
	r.conn, r.API, r.Admin = conn, whirlv1.NewAnimationServiceClient(conn), whirlv1.NewLeaseAdminServiceClient(conn)
	return r, nil
}

func (r *Replica) start(ctx context.Context, extra ...string) (*serverproc.Server, error) {
	args := append(append([]string{}, r.args...), extra...)
	srv, err := serverproc.Start(ctx, serverproc.Options{Path: r.bin, Args: args, Log: r.log, StartTimeout: 30 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("replica %d: %w", r.Index, err)
	}
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
	return srv, nil
}

// Server is the running process, or nil while the replica is down.
func (r *Replica) Server() *serverproc.Server {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.srv
}

// Kill SIGKILLs the replica and waits until it has exited.
func (r *Replica) Kill() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		srv.Kill()
	}
}

// Restart starts the replica again after Kill, retrying while the old
// process's ports are still being released.
func (r *Replica) Restart(ctx context.Context) error {
	var err error
	for range 10 {
		if _, err = r.start(ctx); err == nil || !strings.Contains(err.Error(), "address already in use") {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
	return err
}

// Close kills the replica and closes its connection.
func (r *Replica) Close() {
	r.Kill()
	if r.conn != nil {
		_ = r.conn.Close()
	}
}

// PID is the server's process id, 0 while down.
func (r *Replica) PID() int {
	if s := r.Server(); s != nil {
		return s.PID
	}
	return 0
}

// MetricsAddr is the metrics listener's address, empty while down.
func (r *Replica) MetricsAddr() string {
	if s := r.Server(); s != nil {
		return s.MetricsAddr
	}
	return ""
}
