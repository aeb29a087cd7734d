package main

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// usageError is a command line the CLI cannot run: exit code 2.
// printed says the flag package has already shown the problem and the
// usage.
type usageError struct {
	msg     string
	printed bool
}

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// globals are the flags every command accepts, before or after its name.
type globals struct {
	server     string
	token      string
	tls        bool
	caFile     string
	serverName string
	insecure   bool
	timeout    time.Duration
	json       bool
}

const defaultServer = "localhost:50051"

func newGlobals(getenv func(string) string) *globals {
	g := &globals{server: defaultServer, timeout: 10 * time.Second}
	if s := getenv("WHIRL_SERVER"); s != "" {
		g.server = s
	}
	g.token = getenv("WHIRL_TOKEN")
	return g
}

// register adds the global flags to fs, each defaulting to its current value
// (so registering on a command's flag set keeps what was parsed before the
// command name).
func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.server, "server", g.server, "server address `host:port` (env WHIRL_SERVER)")
	fs.Var(secret{&g.token}, "token", "admin bearer `token` for leases and revoke (env WHIRL_TOKEN)")
	fs.BoolVar(&g.tls, "tls", g.tls, "use TLS (with the system's root CAs unless --ca-file)")
	fs.StringVar(&g.caFile, "ca-file", g.caFile, "PEM `file` of CA certificates to trust (implies --tls)")
	fs.StringVar(&g.serverName, "server-name", g.serverName, "`name` to verify the server's certificate against (implies --tls)")
	fs.BoolVar(&g.insecure, "insecure", g.insecure, "plaintext, sending --token unencrypted even to a server that is not on this machine")
	fs.DurationVar(&g.timeout, "timeout", g.timeout, "bound on connecting and on each call (not on render or --wait; see --deadline)")
	fs.BoolVar(&g.json, "json", g.json, "print results as JSON")
}

// secret is a flag value that never prints itself, so that help output
// cannot show a token taken from the environment.
type secret struct{ s *string }

func (v secret) String() string { return "" }

func (v secret) Set(x string) error {
	*v.s = x
	return nil
}

// parseArgs parses flags and positional arguments in any order; everything
// after "--" is positional.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// styleFlag is --style: wheels or trace.
type styleFlag struct{ v whirlv1.Style }

func (s *styleFlag) String() string {
	if s == nil || s.v == whirlv1.Style_STYLE_UNSPECIFIED {
		return "wheels"
	}
	return styleName(s.v)
}

func (s *styleFlag) Set(v string) error {
	switch strings.ToLower(v) {
	case "wheels":
		s.v = whirlv1.Style_STYLE_WHEELS
	case "trace":
		s.v = whirlv1.Style_STYLE_TRACE
	default:
		return errors.New("must be wheels or trace")
	}
	return nil
}

func styleName(s whirlv1.Style) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "STYLE_"))
}

// shapesFlag is --shape, repeatable or comma-separated: one shape for every
// wheel, or one per wheel.
type shapesFlag struct{ v []whirlv1.Shape }

func (s *shapesFlag) String() string {
	if s == nil {
		return ""
	}
	names := make([]string, len(s.v))
	for i, sh := range s.v {
		names[i] = shapeName(sh)
	}
	return strings.Join(names, ",")
}

func (s *shapesFlag) Set(v string) error {
	for name := range strings.SplitSeq(v, ",") {
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "random" || name == "any" {
			s.v = append(s.v, whirlv1.Shape_SHAPE_UNSPECIFIED)
			continue
		}
		sh, ok := whirlv1.Shape_value["SHAPE_"+strings.ToUpper(name)]
		if !ok || sh == 0 {
			return fmt.Errorf("unknown shape %q (want %s)", name, shapeNames())
		}
		s.v = append(s.v, whirlv1.Shape(sh))
	}
	return nil
}

func shapeName(s whirlv1.Shape) string {
	if s == whirlv1.Shape_SHAPE_UNSPECIFIED {
		return "random"
	}
	return strings.ToLower(strings.TrimPrefix(s.String(), "SHAPE_"))
}

func shapeNames() string {
	var names []string
	for i := int32(1); ; i++ {
		if _, ok := whirlv1.Shape_name[i]; !ok {
			break
		}
		names = append(names, shapeName(whirlv1.Shape(i)))
	}
	return strings.Join(names, ", ") + " or random"
}

// curveFlags describe a generated curve.
type curveFlags struct {
	seed       uint64
	seedSet    bool
	wheels     int
	kFold      int
	congruency int
	shapes     shapesFlag
}

type seedFlag struct{ c *curveFlags }

func (s seedFlag) String() string {
	if s.c == nil || !s.c.seedSet {
		return "random"
	}
	return strconv.FormatUint(s.c.seed, 10)
}

func (s seedFlag) Set(v string) error {
	n, err := strconv.ParseUint(v, 0, 64)
	if err != nil {
		return errors.New("must be a non-negative integer")
	}
	s.c.seed, s.c.seedSet = n, true
	return nil
}

func (c *curveFlags) register(fs *flag.FlagSet) {
	c.congruency = -1
	fs.Var(seedFlag{c}, "seed", "`seed` of the curve (default: random, printed)")
	fs.IntVar(&c.wheels, "wheels", 0, "number of wheels, 3-13 (0 = from the seed)")
	fs.IntVar(&c.kFold, "k-fold", 0, "order of symmetry, 2-12 (0 = from the seed)")
	fs.IntVar(&c.congruency, "congruency", -1, "residue of the frequencies modulo k-fold (-1 = from the seed)")
	fs.Var(&c.shapes, "shape", "wheel `shapes`: one for every wheel, or one per wheel, comma-separated or repeated ("+shapeNames()+")")
}

// request builds the GenerateCurveRequest, picking a random seed if none was
// given.
func (c *curveFlags) request() (*whirlv1.GenerateCurveRequest, error) {
	if !c.seedSet {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, err
		}
		// Keep seeds short enough to type back in.
		c.seed, c.seedSet = binary.BigEndian.Uint64(b[:])%1_000_000, true
	}
	req := &whirlv1.GenerateCurveRequest{Seed: c.seed, Wheels: int32(c.wheels), KFold: int32(c.kFold), Shapes: c.shapes.v}
	if c.congruency >= 0 {
		cg := int32(c.congruency)
		req.Congruency = &cg
	}
	return req, nil
}

// frameFlag is --frame: optional.
type frameFlag struct {
	n   int32
	set bool
}

func (f *frameFlag) String() string {
	if f == nil || !f.set {
		return "finished curve"
	}
	return strconv.Itoa(int(f.n))
}

func (f *frameFlag) Set(v string) error {
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil || n < 0 {
		return errors.New("must be a non-negative integer")
	}
	f.n, f.set = int32(n), true
	return nil
}

// lookFlags set size, style and colours.
type lookFlags struct {
	style      styleFlag
	size       int
	width      int
	height     int
	background string
	pen        string
	lineWidth  float64
}

func (l *lookFlags) register(fs *flag.FlagSet) {
	fs.Var(&l.style, "style", "`style` to draw: wheels (curve and wheels) or trace (curve alone)")
	fs.IntVar(&l.size, "size", 720, "width and height in `pixels`")
	fs.IntVar(&l.width, "width", 0, "width in `pixels` (overrides --size)")
	fs.IntVar(&l.height, "height", 0, "height in `pixels` (overrides --size)")
	fs.StringVar(&l.background, "background", "", "background `colour` as #rrggbb (server default #101418)")
	fs.StringVar(&l.pen, "pen", "", "curve `colour` as #rrggbb (server default #f2c14e)")
	fs.Float64Var(&l.lineWidth, "line-width", 0, "curve line width in `pixels`, 0.5-16 (0 = scaled to the size)")
}

func (l *lookFlags) dims() (int32, int32) {
	w, h := l.size, l.size
	if l.width != 0 {
		w = l.width
	}
	if l.height != 0 {
		h = l.height
	}
	return int32(w), int32(h)
}

func (l *lookFlags) appearance() *whirlv1.Appearance {
	if l.background == "" && l.pen == "" && l.lineWidth == 0 {
		return nil
	}
	return &whirlv1.Appearance{Background: l.background, Pen: l.pen, LineWidth: l.lineWidth}
}
