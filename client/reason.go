package client

import (
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"

	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// ErrorDomain is the google.rpc.ErrorInfo domain of whirl's statuses.
const ErrorDomain = "whirl.v1"

// Reason is why the server refused or ended the call err reports: the
// reason of the google.rpc.ErrorInfo every whirl status carries. It is
// ERROR_REASON_UNSPECIFIED when err is nil, carries no whirl status (a
// transport failure the client saw by itself, its own deadline), or names a
// reason newer than this client; handle those by status.Code(err).
//
//	switch client.Reason(err) {
//	case whirlv1.ErrorReason_LEASE_CAPACITY, whirlv1.ErrorReason_CLIENT_RATE_LIMITED:
//		// wait client.RetryDelay(err), then ask again
//	case whirlv1.ErrorReason_LEASE_NOT_FOUND, whirlv1.ErrorReason_LEASE_MAX_AGE:
//		// acquire a new lease
//	}
func Reason(err error) whirlv1.ErrorReason {
	st, ok := status.FromError(err)
	if !ok || err == nil {
		return whirlv1.ErrorReason_ERROR_REASON_UNSPECIFIED
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == ErrorDomain {
			return whirlv1.ErrorReason(whirlv1.ErrorReason_value[info.GetReason()])
		}
	}
	return whirlv1.ErrorReason_ERROR_REASON_UNSPECIFIED
}
