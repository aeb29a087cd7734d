package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"regexp"
	"sync"
	"sync/atomic"

	middleware "github.com/grpc-ecosystem/go-grpc-middleware/v2"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// RequestIDHeader carries a call's request id: taken from the client's
// metadata when well-formed, generated otherwise, and returned so a client
// can quote it when reporting a problem. A call that succeeds returns it in
// the response headers, a call that fails in the trailers only. A failed call
// must not send headers: the error then goes out as a trailers-only response,
// which a gRPC client may still retry, whereas a call whose headers arrived is
// committed and never retried, so a header on a refusal would defeat every
// client's retry policy and the grpc-retry-pushback-ms hint.
const RequestIDHeader = "x-request-id"

// requestIDForm bounds what a client may choose as its id: it ends up in logs.
var requestIDForm = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

type callKey struct{}

// callFields are a call's log fields. The handler may learn some of them
// late (the video id): the logging interceptor reads them when the call
// ends.
type callFields struct {
	requestID string
	videoID   atomic.Pointer[string]
}

// withRequestID returns ctx carrying the call's request id, and the id.
func withRequestID(ctx context.Context) (context.Context, string) {
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
	return context.WithValue(ctx, callKey{}, &callFields{requestID: id}), id
}

func requestIDUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, id := withRequestID(ctx)
	resp, err := handler(ctx, req)
	md := metadata.Pairs(RequestIDHeader, id)
	if err != nil {
		_ = grpc.SetTrailer(ctx, md)
	} else {
		_ = grpc.SetHeader(ctx, md)
	}
	return resp, err
}

func requestIDStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, id := withRequestID(ss.Context())
	w := &requestIDServerStream{WrappedServerStream: middleware.WrapServerStream(ss), id: metadata.Pairs(RequestIDHeader, id)}
	w.WrappedContext = ctx
	err := handler(srv, w)
	if err != nil {
		// Also when headers went out with a message: the id then arrives twice.
		w.SetTrailer(w.id)
	} else {
		w.setHeader()
	}
	return err
}

// requestIDServerStream adds the request id to the response headers when the
// handler first sends something, so a stream that fails before sending
// anything stays trailers-only.
type requestIDServerStream struct {
	*middleware.WrappedServerStream
	id   metadata.MD
	once sync.Once
}

func (s *requestIDServerStream) setHeader() {
	s.once.Do(func() { _ = s.WrappedServerStream.SetHeader(s.id) })
}

func (s *requestIDServerStream) SendHeader(md metadata.MD) error {
	s.setHeader()
	return s.WrappedServerStream.SendHeader(md)
}

func (s *requestIDServerStream) SendMsg(m any) error {
	s.setHeader()
	return s.WrappedServerStream.SendMsg(m)
}

// logFields adds the request id, and the video id once known, to every log
// line of a call.
func logFields(ctx context.Context) logging.Fields {
	c, ok := ctx.Value(callKey{}).(*callFields)
	if !ok {
		return nil
	}
	f := logging.Fields{"request_id", c.requestID}
	if v := c.videoID.Load(); v != nil {
		f = append(f, "video_id", *v)
	}
	return f
}

// logVideoID adds video_id to the log fields of ctx's call.
func logVideoID(ctx context.Context, id string) {
	if c, ok := ctx.Value(callKey{}).(*callFields); ok {
		c.videoID.Store(&id)
	}
}
