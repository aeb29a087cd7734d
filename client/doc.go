// Package client is the Go client of whirl, a gRPC service that renders
// Farris-wheel ("spirograph") curves to PNG stills and streamed MP4 videos.
//
// It wraps the generated stubs of whirl.v1 (package
// github.com/whirl-dev/whirl/proto/whirl/v1) with what every caller would
// otherwise write by hand:
//
//   - Dial with TLS (a CA file, a tls.Config or the system roots) or
//     plaintext, and a reachability check that fails fast with one clear
//     error (ErrUnreachable) when nothing answers at the address;
//   - lease helpers: Acquire (once, retrying after the server's
//     google.rpc.RetryInfo delay, or waiting in the server's queue), Renew,
//     Release, and the admin calls ListLeases and RevokeLease, which carry the
//     bearer token given with WithToken;
//   - Render, which acquires a lease (or uses the caller's), keeps it alive,
//     streams the MP4 to an io.Writer while checking that the chunks are
//     contiguous and that their size and SHA-256 match the stream's trailer,
//     reports progress, and releases the lease it acquired.
//   - StreamVerifier, the check Render makes of a RenderAnimation stream,
//     for callers that drive the stream themselves (the bench and the load
//     command do), and RetryDelay, a refusal's google.rpc.RetryInfo delay.
//
// The admin token (WithToken) is sent only over TLS or to a loopback
// address unless WithInsecure says plaintext is meant. Dial uses grpc-go's
// own dialer, so HTTPS_PROXY and NO_PROXY apply.
//
// # Errors
//
// A failed call returns an error that keeps its gRPC status, so
// status.Code(err) and status.FromError work on it. A call ended by the
// caller's context also matches context.Canceled or context.DeadlineExceeded
// with errors.Is. Problems the client itself detects are matched with
// errors.Is against the sentinels: ErrTruncated (the stream ended without a
// trailer: the video is incomplete), ErrChecksumMismatch, ErrSizeMismatch,
// ErrOutOfOrder, ErrProtocol, ErrExhausted (no free lease; the concrete error
// is *ExhaustedError) and ErrUnreachable (the concrete error is *DialError).
// Render never reports success for a video that was not verified against the
// trailer.
//
// # Concurrency
//
// A Client is safe for concurrent use; one Client should serve a whole
// program. The command whirl (client/cmd/whirl) is built on this package.
package client
