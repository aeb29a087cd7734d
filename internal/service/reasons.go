package service

import (
	"context"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"

	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// withReason makes err a status carrying exactly one whirl ErrorInfo. A
// status built by newStatus passes unchanged; one built elsewhere (grpc-go
// on a failed Send, an interceptor library) keeps its code, message and
// details and gains the reason its code implies; an error that is no status
// at all goes through errorStatus. It runs on every call's way out, so the
// rule holds whatever a handler returns.
func withReason(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return errorStatus(err)
	}
	if reasonOf(st) != whirlv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
		return err
	}
	info, err := anypb.New(&errdetails.ErrorInfo{Reason: reasonForCode(st.Code()).String(), Domain: ErrorDomain})
	if err != nil {
		return internalError("internal error")
	}
	p := st.Proto()
	p.Details = append([]*anypb.Any{info}, p.Details...)
	return status.FromProto(p).Err()
}

// reasonForCode is the reason of a status whirl did not build itself.
func reasonForCode(c codes.Code) whirlv1.ErrorReason {
	switch c {
	case codes.Canceled:
		return whirlv1.ErrorReason_CANCELED
	case codes.DeadlineExceeded:
		return whirlv1.ErrorReason_DEADLINE_EXCEEDED
	case codes.Unauthenticated:
		return whirlv1.ErrorReason_UNAUTHENTICATED
	case codes.Unimplemented:
		return whirlv1.ErrorReason_UNIMPLEMENTED
	case codes.InvalidArgument, codes.ResourceExhausted:
		// grpc-go's RESOURCE_EXHAUSTED is a request message over the
		// server's size limit: whirl's own refusals carry their reason.
		return whirlv1.ErrorReason_BAD_REQUEST
	}
	return whirlv1.ErrorReason_INTERNAL
}

// reasonOf is the reason of st's whirl ErrorInfo, or UNSPECIFIED if it has
// none (or one whose reason this build does not know).
func reasonOf(st *status.Status) whirlv1.ErrorReason {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == ErrorDomain {
			return whirlv1.ErrorReason(whirlv1.ErrorReason_value[info.GetReason()])
		}
	}
	return whirlv1.ErrorReason_ERROR_REASON_UNSPECIFIED
}

func reasonUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	return resp, withReason(err)
}

func reasonStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return withReason(handler(srv, ss))
}

// unknownMethod answers calls to methods no service registers.
func unknownMethod(_ any, ss grpc.ServerStream) error {
	method, _ := grpc.MethodFromServerStream(ss)
	return newStatus(codes.Unimplemented, whirlv1.ErrorReason_UNIMPLEMENTED, "unknown method "+method)
}
