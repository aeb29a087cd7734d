package fmp4

import (
	"bufio"
	"fmt"
	"io"
)

// Segment is an ISO BMFF segment of a fragmented MP4 stream: the init
// segment, or a media segment holding one fragment (moof+mdat) and the
// boxes before it. The concatenation of all segments, in the order the
// sink receives them, is the whole file.
type Segment struct {
	// Init is true for the first segment: ftyp+moov (the MSE initialization
	// segment). All later segments are media segments.
	Init bool
	// Data holds the segment's boxes. It is freshly allocated for each call
	// of the sink, which may keep it.
	Data []byte
	// Frames is the number of video frames (samples) in a media segment;
	// 0 for the init segment and for a trailing segment of index boxes.
	Frames int
}

// ReadSegments cuts the fragmented MP4 stream read from r into segments and
// hands each to sink, in order, as soon as it is complete. It returns the
// number of frames in the segments delivered and the first error: the
// sink's (wrapped), reading r's, or one wrapping ErrMalformed for a stream
// that is not well formed or ends early. It does not close r.
func ReadSegments(r io.Reader, sink func(Segment) error) (frames int, err error) {
	var s segmenter
	deliver := func(seg *Segment) error {
		if seg == nil {
			return nil
		}
		if err := sink(*seg); err != nil {
			return fmt.Errorf("fmp4: sink: %w", err)
		}
		return nil
	}
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		typ, box, err := readBox(br)
		if err == io.EOF {
			break
		}
		if err != nil {
			return s.frames, err
		}
		seg, err := s.add(typ, box)
		if err != nil {
			return s.frames, err
		}
		if err := deliver(seg); err != nil {
			return s.frames, err
		}
	}
	seg, err := s.finish()
	if err != nil {
		return s.frames, err
	}
	return s.frames, deliver(seg)
}

// segmenter groups top-level boxes into segments: everything up to and
// including moov forms the init segment; after it, each moof+mdat pair forms
// a media segment, together with any other boxes (styp, sidx, prft, emsg,
// free, ...) that come before it. Boxes after the last mdat (mfra) form a
// last segment of their own.
type segmenter struct {
	init    bool   // init segment emitted
	pending []byte // boxes waiting for their segment
	moof    bool   // pending holds a moof
	samples int    // samples in the pending moof
	sizes   int64  // sum of its sample sizes, -1 if not listed
	types   []string
	frames  int // samples in all emitted segments
}

// add takes one whole top-level box and returns the segment it completes, if
// any.
func (s *segmenter) add(typ string, box []byte) (*Segment, error) {
	if !s.init {
		switch typ {
		case "ftyp":
			if len(s.types) > 0 {
				return nil, fmt.Errorf("%w: ftyp after %v", ErrMalformed, s.types)
			}
		case "moov":
			if len(s.types) == 0 || s.types[0] != "ftyp" {
				return nil, fmt.Errorf("%w: moov without a leading ftyp", ErrMalformed)
			}
			data := append(s.pending, box...)
			s.pending, s.types, s.init = nil, nil, true
			return &Segment{Init: true, Data: data}, nil
		case "moof", "mdat", "styp", "sidx", "mfra":
			return nil, fmt.Errorf("%w: %q before the init segment (after %v)", ErrMalformed, typ, s.types)
		default:
			if len(s.types) == 0 {
				return nil, fmt.Errorf("%w: stream starts with %q, not ftyp", ErrMalformed, typ)
			}
		}
		return nil, s.hold(typ, box)
	}
	switch typ {
	case "ftyp", "moov":
		return nil, fmt.Errorf("%w: second %q", ErrMalformed, typ)
	case "moof":
		if s.moof {
			return nil, fmt.Errorf("%w: moof follows a moof without mdat", ErrMalformed)
		}
		n, sizes, err := fragmentInfo(box)
		if err != nil {
			return nil, err
		}
		s.moof, s.samples, s.sizes = true, n, sizes
	case "mdat":
		if !s.moof {
			return nil, fmt.Errorf("%w: mdat without a preceding moof (after %v)", ErrMalformed, s.types)
		}
		_, hdr, size, err := parseHeader(box, int64(len(box)))
		if err != nil {
			return nil, err
		}
		if s.sizes >= 0 && s.sizes != size-int64(hdr) {
			return nil, fmt.Errorf("%w: moof lists %d bytes of samples, mdat holds %d", ErrMalformed, s.sizes, size-int64(hdr))
		}
		data := append(s.pending, box...)
		seg := &Segment{Data: data, Frames: s.samples}
		s.frames += s.samples
		s.pending, s.types, s.moof = nil, nil, false
		return seg, nil
	default:
		if s.moof {
			return nil, fmt.Errorf("%w: %q between moof and mdat", ErrMalformed, typ)
		}
	}
	return nil, s.hold(typ, box)
}

// maxPending bounds the boxes held back while waiting for the box that
// completes a segment: the per-box limits alone do not bound their sum, and a
// broken encoder must not grow memory without end.
const maxPending = maxIndexBox

// hold keeps box for the segment being assembled.
func (s *segmenter) hold(typ string, box []byte) error {
	if len(s.pending)+len(box) > maxPending {
		return fmt.Errorf("%w: %d bytes of boxes %v without completing a segment", ErrMalformed, len(s.pending)+len(box), append(s.types, typ))
	}
	s.pending = append(s.pending, box...)
	s.types = append(s.types, typ)
	return nil
}

// finish is called at the end of the stream; it returns a last segment of
// trailing boxes, if there are any.
func (s *segmenter) finish() (*Segment, error) {
	if !s.init {
		return nil, fmt.Errorf("%w: stream ended without an init segment (boxes: %v)", ErrTruncated, s.types)
	}
	if s.moof {
		return nil, fmt.Errorf("%w: stream ended after a moof without its mdat", ErrTruncated)
	}
	if len(s.pending) == 0 {
		return nil, nil
	}
	data := s.pending
	s.pending, s.types = nil, nil
	return &Segment{Data: data}, nil
}
