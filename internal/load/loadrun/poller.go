package loadrun

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// adminPoller watches the server's own lease count.
type adminPoller struct {
	conn  *grpc.ClientConn
	api   whirlv1.LeaseAdminServiceClient
	token string
	every time.Duration

	// Written by run's goroutine only, read after it ends.
	polls, errors int
	maxCount      int
	over          int // polls that saw more live leases than capacity
	lastErr       string
}

// startPoller connects the ListLeases poller and polls once, which checks
// the admin token and learns the server's capacity; without an admin token
// there is no poller (nil).
func (r *loadRun) startPoller(ctx context.Context) (*adminPoller, error) {
	if r.cfg.AdminToken == "" {
		return nil, nil
	}
	conn, err := grpc.NewClient(r.cfg.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	p := &adminPoller{conn: conn, api: whirlv1.NewLeaseAdminServiceClient(conn), token: r.cfg.AdminToken, every: r.cfg.PollEvery}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	resp, err := p.list(pctx)
	cancel()
	if err != nil {
		p.close()
		return nil, fmt.Errorf("ListLeases: %w", err)
	}
	if int(resp.GetCapacity()) != r.cfg.Capacity && r.cfg.Capacity != 0 {
		r.logf("note: server reports capacity %d, not %d; using the server's", resp.GetCapacity(), r.cfg.Capacity)
	}
	r.capacity = int(resp.GetCapacity())
	if resp.GetCount() > 0 {
		r.logf("note: %d leases already live before the run", resp.GetCount())
	}
	return p, nil
}

// close closes the poller's connection; a nil poller does nothing.
func (p *adminPoller) close() {
	if p != nil {
		_ = p.conn.Close()
	}
}

func (p *adminPoller) list(ctx context.Context) (*whirlv1.ListLeasesResponse, error) {
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+p.token)
	return p.api.ListLeases(ctx, &whirlv1.ListLeasesRequest{})
}

func (p *adminPoller) run(ctx context.Context) {
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		resp, err := p.list(cctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			p.errors++
			p.lastErr = err.Error()
		default:
			p.polls++
			n := max(int(resp.GetCount()), len(resp.GetLeases()))
			p.maxCount = max(p.maxCount, n)
			if n > int(resp.GetCapacity()) {
				p.over++
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
