package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"regexp"

	middleware "github.com/grpc-ecosystem/go-grpc-middleware/v2"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// RequestIDHeader carries a call's request id: taken from the client's
// metadata when well-formed, generated otherwise, and echoed back in the
// response headers so a client can quote it when reporting a problem.
const RequestIDHeader = "x-request-id"

// requestIDForm bounds what a client may choose as its id: it ends up in logs.
var requestIDForm = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

type requestIDKey struct{}

func withRequestID(ctx context.Context) context.Context {
	var id string
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get(RequestIDHeader); len(v) == 1 && requestIDForm.MatchString(v[0]) {
			id = v[0]
		}
	}
	if id == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	_ = grpc.SetHeader(ctx, metadata.Pairs(RequestIDHeader, id))
	return context.WithValue(ctx, requestIDKey{}, id)
}

func requestIDUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	return handler(withRequestID(ctx), req)
}

func requestIDStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	w := middleware.WrapServerStream(ss)
	w.WrappedContext = withRequestID(ss.Context())
	return handler(srv, w)
}

// logFields adds the request id to every log line of a call.
func logFields(ctx context.Context) logging.Fields {
	if id, ok := ctx.Value(requestIDKey{}).(string); ok {
		return logging.Fields{"request_id", id}
	}
	return nil
}
