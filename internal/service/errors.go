package service

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/whirl-dev/whirl/internal/lease"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// ErrorDomain is the google.rpc.ErrorInfo domain of every status whirl
// returns; the reason beside it is a whirlv1.ErrorReason value name.
const ErrorDomain = "whirl.v1"

// retryPushbackTrailer is read by grpc-go's built-in retry policy, which
// ignores google.rpc.RetryInfo; refusals carry both.
const retryPushbackTrailer = "grpc-retry-pushback-ms"

// maxRetryHint caps the retry delay a refusal suggests. The registry's hint
// is when the earliest lease expires, but leases are usually released (or
// their renders end) long before: without a cap a client would sit out a
// whole TTL while slots come free.
const maxRetryHint = 5 * time.Second

// newStatus is the one constructor of the statuses whirl returns: code, a
// google.rpc.ErrorInfo naming reason in ErrorDomain, then details. Every
// other error a handler or interceptor returns passes through withReason on
// its way out, so a status built elsewhere gets its ErrorInfo too.
func newStatus(code codes.Code, reason whirlv1.ErrorReason, msg string, details ...protoMessage) error {
	info := &errdetails.ErrorInfo{Reason: reason.String(), Domain: ErrorDomain}
	st, err := status.New(code, msg).WithDetails(append([]protoMessage{info}, details...)...)
	if err != nil {
		// Only a code of OK fails, and no caller passes one.
		panic(err)
	}
	return st.Err()
}

// leaseStatus maps a lease registry error to the status a client gets. ctx is
// the call's context, used to attach the retry-pushback trailer to refusals.
func leaseStatus(ctx context.Context, err error) error {
	var exhausted *lease.ExhaustedError
	switch {
	case errors.As(err, &exhausted) && exhausted.Queue:
		full := fmt.Sprintf("all %d leases are in use and %d callers already wait for one", exhausted.Capacity, exhausted.MaxWaiting)
		return refusal(ctx, whirlv1.ErrorReason_LEASE_QUEUE_FULL, full, min(exhausted.RetryAfter, maxRetryHint), "lease_queue", fmt.Sprintf("at most %d callers wait for a lease", exhausted.MaxWaiting))
	case errors.As(err, &exhausted):
		// Not err's own text: it names the registry's uncapped hint, which
		// would contradict the RetryInfo sent beside it.
		inUse := fmt.Sprintf("all %d leases are in use", exhausted.Capacity)
		return refusal(ctx, whirlv1.ErrorReason_LEASE_CAPACITY, inUse, min(exhausted.RetryAfter, maxRetryHint), "leases", inUse)
	case errors.Is(err, lease.ErrNotFound):
		return newStatus(codes.NotFound, whirlv1.ErrorReason_LEASE_NOT_FOUND, "lease not found: unknown, expired, released or revoked")
	case errors.Is(err, lease.ErrTooOld):
		return newStatus(codes.FailedPrecondition, whirlv1.ErrorReason_LEASE_MAX_AGE, "lease reached its maximum age; acquire a new one",
			&errdetails.PreconditionFailure{Violations: []*errdetails.PreconditionFailure_Violation{{
				Type: "LEASE_MAX_AGE", Subject: "lease_id", Description: "renewal would pass the lease's maximum age",
			}}})
	case errors.Is(err, lease.ErrBusy):
		return newStatus(codes.FailedPrecondition, whirlv1.ErrorReason_LEASE_BUSY, "lease is already running a render; one render per lease at a time",
			&errdetails.PreconditionFailure{Violations: []*errdetails.PreconditionFailure_Violation{{
				Type: "LEASE_BUSY", Subject: "lease_id", Description: "a render is already running under this lease",
			}}})
	case errors.Is(err, lease.ErrUnavailable), errors.Is(err, lease.ErrClosed):
		return newStatus(codes.Unavailable, whirlv1.ErrorReason_LEASE_STORE_UNAVAILABLE, "lease store unavailable; retry later")
	}
	return errorStatus(err)
}

// refusal is a RESOURCE_EXHAUSTED status with reason, saying why and when
// to come back: retry, rounded up to whole milliseconds (at least one),
// goes into the message, into google.rpc.RetryInfo and into the
// retry-pushback trailer set on ctx's call, so all three agree; subject and
// description name the quota that ran out in google.rpc.QuotaFailure.
func refusal(ctx context.Context, reason whirlv1.ErrorReason, why string, retry time.Duration, subject, description string) error {
	retry = max((retry + time.Millisecond - 1).Truncate(time.Millisecond), time.Millisecond)
	_ = grpc.SetTrailer(ctx, metadata.Pairs(retryPushbackTrailer, strconv.FormatInt(retry.Milliseconds(), 10)))
	return newStatus(codes.ResourceExhausted, reason, fmt.Sprintf("%s; retry in %s", why, retry),
		&errdetails.RetryInfo{RetryDelay: durationpb.New(retry)},
		&errdetails.QuotaFailure{Violations: []*errdetails.QuotaFailure_Violation{{
			Subject: subject, Description: description,
		}}})
}

// errorStatus turns any error into a status for the client: context errors
// keep their codes, a status passes through (withReason gives it a reason
// if it has none), and anything else becomes INTERNAL without leaking
// internals.
func errorStatus(err error) error {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return newStatus(codes.DeadlineExceeded, whirlv1.ErrorReason_DEADLINE_EXCEEDED, "deadline exceeded")
	case errors.Is(err, context.Canceled):
		return newStatus(codes.Canceled, whirlv1.ErrorReason_CANCELED, "canceled")
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return internalError("internal error")
}

// internalError is INTERNAL with msg, which must not leak internals.
func internalError(msg string) error {
	return newStatus(codes.Internal, whirlv1.ErrorReason_INTERNAL, msg)
}
