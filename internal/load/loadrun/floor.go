package loadrun

import (
	"context"
	"io"
	"math/rand/v2"
	"net"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// The floor probes time round trips that involve no lease logic, while the
// clients run: what the machine and the gRPC transport cost on their own,
// the floor under the AcquireLease latency the clients measure.

// floorTimeout bounds one probe sample.
const floorTimeout = 2 * time.Second

// floorStream is the first random stream of the probes; the clients use
// streams 0, 1, ... of the same seed.
const floorStream = 1 << 63

// floorSamples is what one probe measured.
type floorSamples struct {
	d      []time.Duration
	errors int
}

// floorProbe calls sample again and again until ctx ends, after a pause
// drawn from rng, uniform in 10-30 ms, before each call, and times the
// calls. A sample does not inherit ctx's deadline, which a gRPC call could
// see pass before ctx itself reports it; one under way when ctx ends is
// dropped.
func floorProbe(ctx context.Context, rng *rand.Rand, sample func(context.Context) error) floorSamples {
	var s floorSamples
	gap := func() time.Duration {
		return 10*time.Millisecond + time.Duration(rng.Int64N(int64(20*time.Millisecond)+1))
	}
	t := time.NewTimer(gap())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return s
		case <-t.C:
		}
		start := time.Now()
		err := sample(context.WithoutCancel(ctx))
		d := time.Since(start)
		switch {
		case ctx.Err() != nil:
			return s
		case err != nil:
			s.errors++
		default:
			s.d = append(s.d, d)
		}
		t.Reset(gap())
	}
}

// tcpEcho is a loopback TCP echo server inside the load generator and one
// connection to it: its round trip is the machine's own wake-up and
// scheduling cost, with neither gRPC nor the server involved.
type tcpEcho struct {
	lis  net.Listener
	conn net.Conn
	done chan struct{} // closed when the echo goroutine ends
	msg  [32]byte
	back [32]byte
	// err is the first failed round trip's: after it, what is read may
	// belong to an earlier message, so every later round trip fails too.
	err error
}

func newTCPEcho() (*tcpEcho, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	e := &tcpEcho{lis: lis, done: make(chan struct{})}
	go func() {
		defer close(e.done)
		c, err := lis.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, len(e.msg))
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
		}
	}()
	e.conn, err = net.Dial("tcp", lis.Addr().String())
	if err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// roundTrip writes 32 bytes and reads them back.
func (e *tcpEcho) roundTrip(context.Context) error {
	if e.err != nil {
		return e.err
	}
	if e.err = e.conn.SetDeadline(time.Now().Add(floorTimeout)); e.err != nil {
		return e.err
	}
	if _, e.err = e.conn.Write(e.msg[:]); e.err != nil {
		return e.err
	}
	_, e.err = io.ReadFull(e.conn, e.back[:])
	return e.err
}

// Close closes the connection and the listener and waits for the echo
// goroutine to end.
func (e *tcpEcho) Close() {
	if e.conn != nil {
		_ = e.conn.Close()
	}
	_ = e.lis.Close()
	<-e.done
}

// healthCheck returns a probe sample that calls grpc.health.v1.Health/Check
// for the server as a whole (service "") on conn: gRPC's transport and the
// server's scheduling, without the lease logic.
func healthCheck(conn *grpc.ClientConn) func(context.Context) error {
	api := healthpb.NewHealthClient(conn)
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, floorTimeout)
		defer cancel()
		_, err := api.Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	}
}

// wakeupProbe sleeps for period again and again until ctx ends and returns
// how late each wake-up was. It is the scheduling delay any goroutine of
// this process sees on this machine at the moment: the floor under every
// latency the clients measure.
func wakeupProbe(ctx context.Context, period time.Duration) []time.Duration {
	var late []time.Duration
	t := time.NewTimer(period)
	defer t.Stop()
	for {
		start := time.Now()
		t.Reset(period)
		select {
		case <-ctx.Done():
			return late
		case <-t.C:
			late = append(late, max(time.Since(start)-period, 0))
		}
	}
}
