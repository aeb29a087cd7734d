package client

import (
	"context"
	"net"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
)

// bearerToken sends the admin token with the calls it is attached to, but
// only over a connection that keeps it secret: TLS, a loopback address, or
// plaintext the caller asked for (WithInsecure). It decides per call from
// the connection the call actually runs on, so it holds for Dial and New
// alike.
type bearerToken struct {
	token          string
	allowPlaintext bool
}

// GetRequestMetadata returns the authorization header, or refuses with
// UNAUTHENTICATED before anything is sent.
func (b bearerToken) GetRequestMetadata(ctx context.Context, uri ...string) (map[string]string, error) {
	ri, _ := credentials.RequestInfoFromContext(ctx)
	secure := ri.AuthInfo != nil && credentials.CheckSecurityLevel(ri.AuthInfo, credentials.PrivacyAndIntegrity) == nil
	if !secure && !b.allowPlaintext {
		authority := authorityOf(uri)
		if !isLoopback(authority) {
			return nil, status.Errorf(codes.Unauthenticated,
				"admin token not sent: the connection to %s is plaintext and not loopback; use TLS, or allow plaintext explicitly (client.WithInsecure, whirl --insecure)", authority)
		}
	}
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

// RequireTransportSecurity is false: GetRequestMetadata makes the finer
// decision (loopback and explicit plaintext are allowed).
func (bearerToken) RequireTransportSecurity() bool { return false }

// authorityOf is the host:port of the call's URI, "https://host:port/service".
func authorityOf(uri []string) string {
	if len(uri) == 0 {
		return ""
	}
	a := strings.TrimPrefix(uri[0], "https://")
	a, _, _ = strings.Cut(a, "/")
	return a
}

// isLoopback reports whether authority (host or host:port) names this
// machine: localhost or a loopback IP.
func isLoopback(authority string) bool {
	host := authority
	if h, _, err := net.SplitHostPort(authority); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
