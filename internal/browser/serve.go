package browser

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"time"
)

// Server is the HTTP listener: HTTP/1.1 and HTTP/2 (h2c in plaintext, ALPN
// with TLS). Go's own HTTP/2 server speaks h2c since Go 1.24, so
// golang.org/x/net/http2/h2c is not needed.
type Server struct {
	hs *http.Server
}

// NewServer serves h; tc, if not nil, turns TLS on.
func NewServer(h http.Handler, tc *tls.Config) *Server {
	var p http.Protocols
	p.SetHTTP1(true)
	if tc == nil {
		p.SetUnencryptedHTTP2(true)
	} else {
		p.SetHTTP2(true)
	}
	return &Server{hs: &http.Server{
		Handler:           h,
		Protocols:         &p,
		TLSConfig:         tc,
		ReadHeaderTimeout: 10 * time.Second,
		// Idle keep-alive connections are closed eventually; streams are
		// not bounded here (a render streams for as long as it takes).
		IdleTimeout: 2 * time.Minute,
	}}
}

// Serve accepts connections on lis until Shutdown; it returns nil then.
func (s *Server) Serve(lis net.Listener) error {
	var err error
	if s.hs.TLSConfig != nil {
		err = s.hs.ServeTLS(lis, "", "")
	} else {
		err = s.hs.Serve(lis)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections and waits for active requests until
// ctx ends, then closes whatever is left. Run it before the gRPC server's
// graceful stop (service.Server.DrainFirst): that stop would close the
// calls that came through here at once.
func (s *Server) Shutdown(ctx context.Context) {
	if err := s.hs.Shutdown(ctx); err != nil {
		_ = s.hs.Close()
	}
}
