package service

import (
	"fmt"
	"unicode"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/protoadapt"

	"github.com/whirl-dev/whirl/internal/lease"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

type protoMessage = protoadapt.MessageV1

// violations collects every problem with a request before any work starts, so
// a client learns all of them at once.
type violations []*errdetails.BadRequest_FieldViolation

func (v *violations) add(field, description string) {
	*v = append(*v, &errdetails.BadRequest_FieldViolation{Field: field, Description: description})
}

// maxViolations bounds the details of one error, so that the size of a
// refusal never grows with the size of the request.
const maxViolations = 50

// err returns INVALID_ARGUMENT with a google.rpc.BadRequest, or nil.
func (v violations) err() error {
	if len(v) == 0 {
		return nil
	}
	if len(v) > maxViolations {
		more := len(v) - maxViolations
		v = append(v[:maxViolations:maxViolations], &errdetails.BadRequest_FieldViolation{
			Field: "", Description: fmt.Sprintf("and %d more violations", more),
		})
	}
	msg := "invalid " + v[0].Field + ": " + v[0].Description
	if len(v) > 1 {
		msg += " (and more, see details)"
	}
	return newStatus(codes.InvalidArgument, whirlv1.ErrorReason_BAD_REQUEST, msg, &errdetails.BadRequest{FieldViolations: v})
}

func (v *violations) holder(field, s string) {
	switch {
	case s == "":
		v.add(field, "required")
	case len(s) > lease.MaxHolderBytes:
		v.add(field, fmt.Sprintf("at most %d bytes", lease.MaxHolderBytes))
	default:
		for _, r := range s {
			if !unicode.IsPrint(r) {
				v.add(field, "must be printable text")
				return
			}
		}
	}
}

// leaseID checks a lease token's form; required says whether empty is an error.
func (v *violations) leaseID(field, s string, required bool) {
	switch {
	case s == "" && required:
		v.add(field, "required")
	case s != "" && !lease.ValidToken(s):
		v.add(field, fmt.Sprintf("must be the %d lowercase hex digits AcquireLease returned", lease.TokenDigits))
	}
}
