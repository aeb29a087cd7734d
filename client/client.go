package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

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
	// maxHostLabel is the longest DNS label (RFC 1035): the host part of
	// the default holder label is cut to it. It keeps the default far
	// inside the server's bound on holder labels, which the proto states
	// and the server enforces (INVALID_ARGUMENT naming the field).
	maxHostLabel = 63
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
// it. Plaintext is the default; this makes the choice explicit, and it is
// the only way to let the admin token (WithToken) travel unencrypted to a
// server that is not on a loopback address.
func WithInsecure() Option {
	return func(o *options) { o.insecure = true }
}

// WithToken sets the admin bearer token, sent as `authorization: Bearer
// <token>` with LeaseAdminService calls (ListLeases, RevokeLease) only. It is
// sent over TLS or to a loopback address; over plaintext to any other
// address the call fails with UNAUTHENTICATED before the token leaves the
// process, unless WithInsecure is given too.
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
// client acquires: printable text within the bound the proto states for
// AcquireLeaseRequest.holder; the server refuses a longer one with
// INVALID_ARGUMENT (FieldViolations names it). The default is
// "whirl-client@<host>", host being the first label of the host name.
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
	host, err := os.Hostname()
	if err != nil {
		return DefaultHolder
	}
	host, _, _ = strings.Cut(host, ".")
	host = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) && r != ' ' {
			return r
		}
		return -1
	}, host)
	if len(host) > maxHostLabel {
		host = strings.ToValidUTF8(host[:maxHostLabel], "")
	}
	if host == "" {
		return DefaultHolder
	}
	return DefaultHolder + "@" + host
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

// Dial connects to the whirl server at addr (host:port, or any gRPC target;
// several replicas as a comma-separated list of host:port or a dns:///
// name, balanced round robin) and, unless WithLazyConnect is given, waits until the connection is ready:
// a server that cannot be reached fails at once with a *DialError
// (errors.Is(err, ErrUnreachable)) naming the cause, e.g. "connection
// refused". ctx (and WithTimeout) bounds that wait only. Dial uses grpc-go's
// own dialer, so HTTPS_PROXY and NO_PROXY apply. The connection applies
// whirl's service config (proto/whirl/v1/service_config.json): it retries
// AcquireLease, GenerateCurve and RenderStill on UNAVAILABLE, and leaves
// RESOURCE_EXHAUSTED to Acquire's policy. Close the Client when done.
func Dial(ctx context.Context, addr string, opts ...Option) (*Client, error) {
	o := newOptions(opts)
	creds, err := o.credentials()
	if err != nil {
		return nil, fmt.Errorf("whirl: dial %s: %w", addr, err)
	}
	target, targetOpts, balanced := replicaTarget(addr)
	sc, err := serviceConfig(balanced)
	if err != nil {
		return nil, fmt.Errorf("whirl: dial %s: service config: %w", addr, err)
	}
	dialOpts := append([]grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithUserAgent("whirl-go-client"),
		grpc.WithDefaultServiceConfig(sc),
	}, targetOpts...)
	conn, err := grpc.NewClient(target, append(dialOpts, o.dialOpts...)...)
	if err != nil {
		return nil, &DialError{Addr: addr, Err: err}
	}
	if !o.lazy {
		if o.timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, o.timeout)
			defer cancel()
		}
		if err := waitReady(ctx, conn); err != nil {
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

// adminAuth attaches the bearer token to an admin call (see bearerToken for
// when it is refused instead).
func (c *Client) adminAuth() []grpc.CallOption {
	if c.opts.token == "" {
		return nil
	}
	return []grpc.CallOption{grpc.PerRPCCredentials(bearerToken{token: c.opts.token, allowPlaintext: c.opts.insecure})}
}

// waitReady connects conn and waits until it is ready, failing at the first
// transient failure with its cause.
func waitReady(ctx context.Context, conn *grpc.ClientConn) error {
	conn.Connect()
	for {
		s := conn.GetState()
		switch s {
		case connectivity.Ready:
			return nil
		case connectivity.TransientFailure:
			return lastConnError(ctx, conn)
		case connectivity.Shutdown:
			return errors.New("connection closed")
		}
		if !conn.WaitForStateChange(ctx, s) {
			if s == connectivity.Connecting {
				return fmt.Errorf("%w (still connecting)", ctx.Err())
			}
			return ctx.Err()
		}
	}
}

// lastConnError is why conn is in TRANSIENT_FAILURE. grpc-go keeps the last
// connection error to itself and hands it to the next call that does not
// wait for the connection, so one such call, to a method no server has,
// fails at once with it; it never leaves this process.
func lastConnError(ctx context.Context, conn *grpc.ClientConn) error {
	err := conn.Invoke(ctx, "/whirl.v1.internal/Probe", &emptypb.Empty{}, &emptypb.Empty{})
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.Unavailable {
		return errors.New("connection failed" + listeningHint)
	}
	cause := connCause(st.Message())
	if strings.Contains(cause, "server preface") {
		// Something answered, but not with HTTP/2: typically plaintext
		// against a TLS server, or not a gRPC server at all.
		cause += listeningHint
	}
	return errors.New(cause)
}

// listeningHint follows a cause that says nothing was understood.
const listeningHint = " (is a gRPC server listening there, with the same TLS setting?)"

// connCause trims grpc-go's wrapping of a connection error down to what
// DialError does not already say: "connection error: desc = \"transport:
// Error while dialing: dial tcp 127.0.0.1:1: connect: connection refused\""
// becomes "connection refused"; a failed TLS handshake becomes "TLS
// handshake: " and the TLS error.
func connCause(msg string) string {
	msg = strings.TrimPrefix(msg, "connection error: desc = ")
	if unq, err := strconv.Unquote(msg); err == nil {
		msg = unq
	}
	if rest, ok := strings.CutPrefix(msg, "transport: authentication handshake failed: "); ok {
		return "TLS handshake: " + rest
	}
	msg = strings.TrimPrefix(msg, "transport: Error while dialing: ")
	if strings.HasPrefix(msg, "dial ") {
		if i := strings.LastIndex(msg, ": "); i >= 0 {
			return msg[i+2:]
		}
	}
	return msg
}
