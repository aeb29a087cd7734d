package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"
	"unicode"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// Defaults of the Client's options.
const (
	// DefaultMaxRetryDelay caps the wait between two AcquireLease attempts
	// when every slot is taken (WithMaxRetryDelay).
	DefaultMaxRetryDelay = 2 * time.Second
	// DefaultHolder is the start of the holder label when WithHolder is not
	// given; the host name follows it.
	DefaultHolder = "whirl-client"
	// maxHolderBytes is the server's bound on holder labels.
	maxHolderBytes = 128
	// releaseTimeout bounds the release of a lease once a render has ended,
	// even when the caller's context has been cancelled.
	releaseTimeout = 5 * time.Second
)

// Client calls a whirl server. It is safe for concurrent use.
type Client struct {
	anim   whirlv1.AnimationServiceClient
	admin  whirlv1.LeaseAdminServiceClient
	closer io.Closer
	opts   options
}

// Option configures a Client.
type Option func(*options)

type options struct {
	// Transport (Dial only).
	tls        bool
	tlsConfig  *tls.Config
	caFile     string
	serverName string
	insecure   bool
	lazy       bool
	dialOpts   []grpc.DialOption
	// Calls.
	token         string
	timeout       time.Duration
	holder        string
	maxRetryDelay time.Duration
}

// WithTLS makes Dial use TLS with cfg; nil means the system's root CAs.
// The default is plaintext, which is what the whirl server serves unless it
// is given credentials.
func WithTLS(cfg *tls.Config) Option {
	return func(o *options) {
		o.tls = true
		if cfg != nil {
			o.tlsConfig = cfg.Clone()
		}
	}
}

// WithCAFile makes Dial use TLS, trusting the PEM certificates in path
// (instead of the system's roots).
func WithCAFile(path string) Option {
	return func(o *options) { o.tls, o.caFile = true, path }
}

// WithServerName sets the name the server's TLS certificate is checked
// against (and sent as SNI), when it differs from the host dialled. It has no
// effect without TLS.
func WithServerName(name string) Option {
	return func(o *options) { o.serverName = name }
}

// WithInsecure makes Dial use plaintext, refusing any TLS option given with
// it. Plaintext is the default; this makes the choice explicit.
func WithInsecure() Option {
	return func(o *options) { o.insecure = true }
}

// WithToken sets the admin bearer token, sent as `authorization: Bearer
// <token>` with LeaseAdminService calls (ListLeases, RevokeLease) only. Use
// TLS when the server is not on the local machine.
func WithToken(token string) Option {
	return func(o *options) { o.token = token }
}

// WithTimeout bounds each unary call (and Dial's reachability check) to d,
// unless the caller's context ends sooner. It does not apply to Render, nor
// to Acquire with AcquireWait: those run as long as the caller's context
// allows. Zero (the default) means no bound beyond the context.
func WithTimeout(d time.Duration) Option {
	return func(o *options) { o.timeout = d }
}

// WithHolder sets the holder label shown to operators for the leases this
// client acquires (1-128 bytes of printable text). The default is
// "whirl-client@<hostname>".
func WithHolder(holder string) Option {
	return func(o *options) { o.holder = holder }
}

// WithMaxRetryDelay caps the wait between AcquireLease attempts when every
// slot is taken (default DefaultMaxRetryDelay). The server's RetryInfo is the
// time until the earliest lease expires, which can be minutes; a holder may
// release sooner.
func WithMaxRetryDelay(d time.Duration) Option {
	return func(o *options) { o.maxRetryDelay = d }
}

// WithLazyConnect makes Dial return at once without checking that the
// server answers; the connection is made by the first call, and re-made
// after failures, as grpc.NewClient does.
func WithLazyConnect() Option {
	return func(o *options) { o.lazy = true }
}

// WithDialOptions adds gRPC dial options (interceptors, keepalive, ...)
// after the client's own.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dialOpts = append(o.dialOpts, opts...) }
}

func newOptions(opts []Option) options {
	o := options{maxRetryDelay: DefaultMaxRetryDelay}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.holder == "" {
		o.holder = defaultHolder()
	}
	if o.maxRetryDelay <= 0 {
		o.maxRetryDelay = DefaultMaxRetryDelay
	}
	return o
}

func defaultHolder() string {
	h := DefaultHolder
	if host, err := os.Hostname(); err == nil && host != "" {
		h += "@" + host
	}
	h = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return -1
	}, h)
	if len(h) > maxHolderBytes {
		h = strings.ToValidUTF8(h[:maxHolderBytes], "")
	}
	return h
}

// credentials returns the transport security the options ask for.
func (o *options) credentials() (credentials.TransportCredentials, error) {
	if !o.tls {
		return insecure.NewCredentials(), nil
	}
	if o.insecure {
		return nil, errors.New("both TLS and plaintext (WithInsecure) requested")
	}
	cfg := o.tlsConfig
	if cfg == nil {
		cfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if o.caFile != "" {
		pem, err := os.ReadFile(o.caFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s: no PEM certificates in it", o.caFile)
		}
		cfg.RootCAs = pool
	}
	if o.serverName != "" {
		cfg.ServerName = o.serverName
	}
	return credentials.NewTLS(cfg), nil
}

// Dial connects to the whirl server at addr (host:port, or any gRPC target)
// and, unless WithLazyConnect is given, waits until the connection is ready:
// a server that cannot be reached fails at once with a *DialError
// (errors.Is(err, ErrUnreachable)) naming the cause, e.g. "connection
// refused". ctx (and WithTimeout) bounds that wait only. Close the Client
// when done.
func Dial(ctx context.Context, addr string, opts ...Option) (*Client, error) {
	o := newOptions(opts)
	creds, err := o.credentials()
	if err != nil {
		return nil, fmt.Errorf("whirl: dial %s: %w", addr, err)
	}
	rec := &connRecorder{}
	dialOpts := append([]grpc.DialOption{
		grpc.WithTransportCredentials(recordingCreds{TransportCredentials: creds, rec: rec}),
		grpc.WithContextDialer(rec.dial),
		grpc.WithUserAgent("whirl-go-client"),
	}, o.dialOpts...)
	conn, err := grpc.NewClient(addr, dialOpts...)
	if err != nil {
		return nil, &DialError{Addr: addr, Err: err}
	}
	if !o.lazy {
		if o.timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, o.timeout)
			defer cancel()
		}
		if err := waitReady(ctx, conn, rec); err != nil {
			_ = conn.Close()
			return nil, &DialError{Addr: addr, Err: err}
		}
	}
	c := newClient(conn, o)
	c.closer = conn
	return c, nil
}

// New wraps an existing connection (for instance one shared with other
// services, or an in-process one). The transport options (WithTLS,
// WithCAFile, WithServerName, WithInsecure, WithLazyConnect,
// WithDialOptions) are ignored: conn's own apply. Close does not close conn.
func New(conn grpc.ClientConnInterface, opts ...Option) *Client {
	return newClient(conn, newOptions(opts))
}

func newClient(conn grpc.ClientConnInterface, o options) *Client {
	return &Client{
		anim:  whirlv1.NewAnimationServiceClient(conn),
		admin: whirlv1.NewLeaseAdminServiceClient(conn),
		opts:  o,
	}
}

// Close closes the connection Dial opened. It does not release leases: a
// lease outlives its client until it is released or expires.
func (c *Client) Close() error {
	if c.closer == nil {
		return nil
	}
	return c.closer.Close()
}

// callContext bounds one unary call by the client's timeout.
func (c *Client) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.opts.timeout > 0 {
		return context.WithTimeout(ctx, c.opts.timeout)
	}
	return context.WithCancel(ctx)
}

// adminContext adds the bearer token to an admin call's metadata.
func (c *Client) adminContext(ctx context.Context) context.Context {
	if c.opts.token == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.opts.token)
}

// waitReady connects conn and waits until it is ready, failing at the first
// transient failure with the cause rec saw.
func waitReady(ctx context.Context, conn *grpc.ClientConn, rec *connRecorder) error {
	conn.Connect()
	for {
		s := conn.GetState()
		switch s {
		case connectivity.Ready:
			return nil
		case connectivity.TransientFailure:
			return rec.cause(errors.New("connection failed (is a gRPC server listening there, with the same TLS setting?)"))
		case connectivity.Shutdown:
			return errors.New("connection closed")
		}
		if !conn.WaitForStateChange(ctx, s) {
			return rec.cause(ctx.Err())
		}
	}
}

// connRecorder remembers the last connection error (TCP or TLS), which gRPC
// otherwise keeps to itself until a call fails.
type connRecorder struct {
	mu  sync.Mutex
	err error
}

func (r *connRecorder) set(err error) {
	r.mu.Lock()
	r.err = err
	r.mu.Unlock()
}

// cause returns the recorded error, or fallback if none was recorded.
func (r *connRecorder) cause(fallback error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		if errors.Is(fallback, context.DeadlineExceeded) {
			return fmt.Errorf("%w (last error: %w)", fallback, r.err)
		}
		return r.err
	}
	return fallback
}

func (r *connRecorder) dial(ctx context.Context, addr string) (net.Conn, error) {
	network := "tcp"
	if strings.HasPrefix(addr, "/") || strings.HasPrefix(addr, "@") {
		network = "unix"
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		r.set(err)
	}
	return conn, err
}

// recordingCreds records TLS handshake failures.
type recordingCreds struct {
	credentials.TransportCredentials
	rec *connRecorder
}

func (c recordingCreds) ClientHandshake(ctx context.Context, authority string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	nc, info, err := c.TransportCredentials.ClientHandshake(ctx, authority, conn)
	if err != nil {
		c.rec.set(fmt.Errorf("TLS handshake: %w", err))
	}
	return nc, info, err
}

func (c recordingCreds) Clone() credentials.TransportCredentials {
	return recordingCreds{TransportCredentials: c.TransportCredentials.Clone(), rec: c.rec}
}
