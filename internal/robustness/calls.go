package robustness

import (
	"context"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// callTimeout bounds each unary call; waitTimeout an acquire that waits.
const (
	callTimeout = 3 * time.Second
	waitTimeout = 2500 * time.Millisecond
)

// outcome classifies a call's error as the model needs it.
func outcome(err error) Output {
	if err == nil {
		return Output{Result: ResultOK}
	}
	st := status.Convert(err)
	out := Output{Code: st.Code().String(), Err: st.Message()}
	if len(out.Err) > 200 {
		out.Err = out.Err[:200]
	}
	for _, d := range st.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			out.Reason = ei.GetReason()
		}
	}
	switch st.Code() {
	case codes.NotFound:
		out.Result = ResultNotFound
	case codes.ResourceExhausted, codes.FailedPrecondition, codes.InvalidArgument,
		codes.OutOfRange, codes.PermissionDenied, codes.Unauthenticated, codes.AlreadyExists:
		out.Result = ResultRefused
	case codes.Unavailable:
		// A replica that is down refuses the connection: the request never
		// left the client. Anything else may have reached the server.
		out.Result = ResultUnknown
		if strings.Contains(out.Err, "while dialing") {
			out.Result = ResultRefused
		}
	default:
		out.Result = ResultUnknown
	}
	return out
}

// caller issues recorded calls for one client.
type caller struct {
	id     int
	rec    *Recorder
	token  string
	holder string
}

func (c *caller) admin(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.token)
}

// lease describes a granted lease in out.
func (c *caller) leaseOutput(out *Output, l *whirlv1.Lease) {
	out.LeaseID, out.Handle = l.GetLeaseId(), l.GetHandle()
	out.Expire = c.rec.Since(l.GetExpireTime().AsTime())
	out.MaxExpire = c.rec.Since(l.GetMaxExpireTime().AsTime())
}

func (c *caller) acquire(ctx context.Context, r *Replica, rid string, wait bool) Output {
	req := &whirlv1.AcquireLeaseRequest{Holder: c.holder, Wait: wait, RequestId: rid}
	done := c.rec.Begin(c.id, Input{Kind: KindAcquire, Replica: r.Index, Holder: c.holder, RequestID: rid, Wait: wait})
	timeout := callTimeout
	if wait {
		timeout = waitTimeout
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	l, err := r.API.AcquireLease(cctx, req)
	out := outcome(err)
	if err == nil {
		c.leaseOutput(&out, l)
	}
	done(out)
	return out
}

func (c *caller) renew(ctx context.Context, r *Replica, id string) Output {
	done := c.rec.Begin(c.id, Input{Kind: KindRenew, Replica: r.Index, LeaseID: id})
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	l, err := r.API.RenewLease(cctx, &whirlv1.RenewLeaseRequest{LeaseId: id})
	out := outcome(err)
	if err == nil {
		c.leaseOutput(&out, l)
	}
	done(out)
	return out
}

func (c *caller) release(ctx context.Context, r *Replica, id string) Output {
	done := c.rec.Begin(c.id, Input{Kind: KindRelease, Replica: r.Index, LeaseID: id})
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	_, err := r.API.ReleaseLease(cctx, &whirlv1.ReleaseLeaseRequest{LeaseId: id})
	out := outcome(err)
	done(out)
	return out
}

func (c *caller) revoke(ctx context.Context, r *Replica, handle string) Output {
	done := c.rec.Begin(c.id, Input{Kind: KindRevoke, Replica: r.Index, Handle: handle})
	cctx, cancel := context.WithTimeout(c.admin(ctx), callTimeout)
	defer cancel()
	_, err := r.Admin.RevokeLease(cctx, &whirlv1.RevokeLeaseRequest{Handle: handle})
	out := outcome(err)
	done(out)
	return out
}

// list records a listing; rendering is the handles of leases a render runs
// under.
func (c *caller) list(ctx context.Context, r *Replica) (out Output, rendering []string) {
	done := c.rec.Begin(c.id, Input{Kind: KindList, Replica: r.Index})
	cctx, cancel := context.WithTimeout(c.admin(ctx), callTimeout)
	defer cancel()
	resp, err := r.Admin.ListLeases(cctx, &whirlv1.ListLeasesRequest{})
	out = outcome(err)
	if err == nil {
		out.Count = int(resp.GetCount())
		for _, l := range resp.GetLeases() {
			out.Handles = append(out.Handles, l.GetHandle())
			out.Holders = append(out.Holders, l.GetHolder())
			out.Rendering = append(out.Rendering, l.GetRendering())
			if l.GetRendering() {
				rendering = append(rendering, l.GetHandle())
			}
		}
	}
	done(out)
	return out, rendering
}
