package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Sentinel errors; match them with errors.Is.
var (
	// ErrTruncated: the render stream ended without a trailer, so the video
	// is incomplete. What was written to the caller's writer must be thrown
	// away.
	ErrTruncated = errors.New("stream ended without a trailer: the video is incomplete")
	// ErrChecksumMismatch: the SHA-256 of the bytes received differs from
	// the one in the trailer.
	ErrChecksumMismatch = errors.New("SHA-256 of the received video does not match the trailer")
	// ErrSizeMismatch: the number of bytes received differs from the
	// trailer's total.
	ErrSizeMismatch = errors.New("size of the received video does not match the trailer")
	// ErrOutOfOrder: a chunk did not start where the previous one ended (a
	// gap or an overlap).
	ErrOutOfOrder = errors.New("chunk out of order")
	// ErrProtocol: the server broke the stream's event order (a chunk before
	// the header, a second header, an event after the trailer).
	ErrProtocol = errors.New("stream broke the protocol")
	// ErrExhausted: every lease slot is taken. The concrete error is
	// *ExhaustedError.
	ErrExhausted = errors.New("all leases are in use")
	// ErrUnreachable: nothing usable answered at the server's address. The
	// concrete error is *DialError.
	ErrUnreachable = errors.New("cannot reach server")
)

// RPCError is a call that failed with a gRPC status: refused by the server,
// failed in transport, or ended by the caller's context. status.Code and
// status.FromError see its Status; when the caller's context ended the call,
// errors.Is also matches context.Canceled or context.DeadlineExceeded.
type RPCError struct {
	// Op is what the client was doing, e.g. "acquire lease".
	Op string
	// Status is the call's status, with any details the server attached.
	Status *status.Status
	// ctxErr is the caller's context error, if the context had ended.
	ctxErr error
}

func (e *RPCError) Error() string {
	msg := fmt.Sprintf("whirl: %s: %s: %s", e.Op, e.Status.Code(), withoutEcho(e.Op, e.Status.Message()))
	if e.ctxErr != nil && e.Status.Code() != codes.Canceled && e.Status.Code() != codes.DeadlineExceeded {
		msg += " (" + e.ctxErr.Error() + ")"
	}
	return msg
}

// GRPCStatus returns the call's status.
func (e *RPCError) GRPCStatus() *status.Status { return e.Status }

// Unwrap returns the caller's context error, if it ended the call.
func (e *RPCError) Unwrap() error { return e.ctxErr }

// withoutEcho drops a prefix of the server's message that repeats the last
// word of what the client was doing, so that "acquire lease" and "lease: all
// 5 slots taken" read "acquire lease: all 5 slots taken", not "acquire
// lease: lease: ...".
func withoutEcho(op, msg string) string {
	last := op[strings.LastIndexByte(op, ' ')+1:]
	if rest, ok := strings.CutPrefix(msg, last+": "); ok && last != "" {
		return rest
	}
	return msg
}

// FieldViolations lists the request fields the server rejected, from the
// google.rpc.BadRequest detail of an INVALID_ARGUMENT status, as
// "field: description". It returns nil for any other error.
func FieldViolations(err error) []string {
	st, ok := status.FromError(err)
	if !ok {
		return nil
	}
	var out []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				out = append(out, v.GetField()+": "+v.GetDescription())
			}
		}
	}
	return out
}

// ExhaustedError is AcquireLease's RESOURCE_EXHAUSTED refusal: every lease
// slot is taken. errors.Is(err, ErrExhausted) is true, and status.Code(err)
// is codes.ResourceExhausted.
type ExhaustedError struct {
	// RetryAfter is the server's google.rpc.RetryInfo delay: the time until
	// the earliest live lease expires (a release may free a slot sooner).
	// Zero if the server sent none.
	RetryAfter time.Duration
	// Attempts is how many times the lease was asked for.
	Attempts int
	// Status is the last refusal, with its details.
	Status *status.Status
	// ctxErr is set when the caller's context ended the retries.
	ctxErr error
}

func (e *ExhaustedError) Error() string {
	msg := "whirl: acquire lease: " + withoutEcho("acquire lease", e.Status.Message())
	if e.Attempts > 1 {
		msg += fmt.Sprintf(" (gave up after %d attempts", e.Attempts)
		if e.ctxErr != nil {
			msg += ": " + e.ctxErr.Error()
		}
		msg += ")"
	} else if e.ctxErr != nil {
		msg += " (" + e.ctxErr.Error() + ")"
	}
	return msg
}

// Is makes errors.Is(err, ErrExhausted) true.
func (e *ExhaustedError) Is(target error) bool { return target == ErrExhausted }

// GRPCStatus returns the last refusal.
func (e *ExhaustedError) GRPCStatus() *status.Status { return e.Status }

// Unwrap returns the caller's context error, if it ended the retries.
func (e *ExhaustedError) Unwrap() error { return e.ctxErr }

func exhaustedFrom(st *status.Status, attempts int) *ExhaustedError {
	e := &ExhaustedError{Status: st, Attempts: attempts}
	e.RetryAfter, _ = RetryDelay(st.Err())
	return e
}

// RetryDelay is the google.rpc.RetryInfo delay in err's gRPC status, if it
// carries one.
func RetryDelay(err error) (time.Duration, bool) {
	st, ok := status.FromError(err)
	if !ok {
		return 0, false
	}
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
			return ri.GetRetryDelay().AsDuration(), true
		}
	}
	return 0, false
}

// DialError is a server that could not be reached. errors.Is(err,
// ErrUnreachable) is true; status.Code(err) is codes.Unavailable.
type DialError struct {
	// Addr is the address dialled.
	Addr string
	// Err is the cause, as precise as the client could learn it (the
	// network or TLS error of the last connection attempt).
	Err error
}

func (e *DialError) Error() string {
	cause := "connection failed"
	if e.Err != nil {
		cause = e.Err.Error()
	}
	return fmt.Sprintf("whirl: cannot reach server at %s: %s", e.Addr, cause)
}

// Is makes errors.Is(err, ErrUnreachable) true.
func (e *DialError) Is(target error) bool { return target == ErrUnreachable }

// Unwrap returns the cause.
func (e *DialError) Unwrap() error { return e.Err }

// GRPCStatus reports UNAVAILABLE, the status a call to the server would get.
func (e *DialError) GRPCStatus() *status.Status {
	return status.New(codes.Unavailable, e.Error())
}

// rpcError wraps a failed call's error with what the client was doing,
// keeping its status and the caller's context error.
func rpcError(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	var de *DialError
	if errors.As(err, &de) {
		return err
	}
	e := &RPCError{Op: op, Status: status.Convert(err)}
	e.ctxErr = ctx.Err()
	return e
}
