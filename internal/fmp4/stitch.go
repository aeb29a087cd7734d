package fmp4

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// ErrStitch is wrapped by every error about spans that cannot be joined
// into one stream: encoders whose settings differ (another SPS/PPS, another
// init segment), timestamps that do not run on, or boxes that have no place
// in the middle of a stream.
var ErrStitch = errors.New("spans do not stitch")

// Stitcher joins the fragmented MP4 streams of a video's spans, each from
// its own encoder, into one stream a player sees as a single track: one
// init segment (the first span's), the media segments of every span in
// order with their mfhd sequence numbers renumbered to run on across span
// boundaries and their tfdt decode times moved by the duration of the spans
// before. Every later span's init segment must equal the first's, SPS and
// PPS included: if it does not, the encoders were not set up alike and
// their pieces would not decode as one stream, so Add fails.
//
// After the init segment a span's stream may hold moof, mdat and styp,
// which are passed on, and sidx, which is dropped: it indexes the span's
// own stream, and its offsets would be wrong in the stitched one. Any other
// top-level box (mfra, free, emsg, ...) fails Add rather than land in the
// middle of the stitched stream.
//
// A Stitcher is used from one goroutine at a time; the segments of one span
// are given to Add in order, then EndSpan.
type Stitcher struct {
	sink func(Segment) error

	init    []byte // the first span's init segment
	avcC    []byte // its decoder configuration (SPS, PPS)
	index   int    // the span being added
	started bool   // its init segment has been seen
	seq     uint32 // the last mfhd sequence number sent
	base    uint64 // where the span starts on the stitched timeline
	next    uint64 // where its next fragment starts on its own timeline
	delay   int64  // the first span's first composition offset
	fresh   bool   // no fragment of the current span seen yet
}

// NewStitcher returns a Stitcher that hands the joined stream to sink, one
// Segment at a time (the sink may keep the data).
func NewStitcher(sink func(Segment) error) *Stitcher {
	return &Stitcher{sink: sink}
}

// Add takes the next segment of the current span's stream: its init
// segment first, then its media segments in order. The first span's init
// segment is passed on; later ones are checked and dropped. Media segments
// are rewritten in place (sidx boxes cut out) and passed on; one left
// empty is not.
func (s *Stitcher) Add(seg Segment) error {
	if !s.started {
		if !seg.Init {
			return fmt.Errorf("fmp4: %w: span %d: media before its init segment", ErrStitch, s.index)
		}
		s.started, s.next, s.fresh = true, 0, true
		if s.index == 0 {
			_, avcC, err := videoConfig(seg.Data)
			if err != nil {
				return fmt.Errorf("fmp4: %w: span 0's init segment: %w", ErrStitch, err)
			}
			s.init, s.avcC = seg.Data, avcC
			return s.sink(seg)
		}
		return s.sameInit(seg.Data)
	}
	if seg.Init {
		return fmt.Errorf("fmp4: %w: span %d: a second init segment", ErrStitch, s.index)
	}
	data, err := s.rewrite(seg.Data)
	if err != nil {
		return fmt.Errorf("fmp4: span %d: %w", s.index, err)
	}
	if len(data) == 0 {
		return nil
	}
	seg.Data = data
	return s.sink(seg)
}

// rewrite checks the top-level boxes of a media segment, rewrites its moofs
// in place and returns the segment without its sidx boxes.
func (s *Stitcher) rewrite(data []byte) ([]byte, error) {
	boxes, err := Boxes(data)
	if err != nil {
		return nil, err
	}
	cut := false
	for _, b := range boxes {
		switch b.Type {
		case "moof":
			if err := s.rewriteMoof(data[b.Offset : b.Offset+b.Size]); err != nil {
				return nil, err
			}
		case "mdat", "styp":
		case "sidx":
			cut = true
		default:
			return nil, fmt.Errorf("%w: a top-level %q box after the init segment", ErrStitch, b.Type)
		}
	}
	if !cut {
		return data, nil
	}
	var out []byte
	for _, b := range boxes {
		if b.Type != "sidx" {
			out = append(out, data[b.Offset:b.Offset+b.Size]...)
		}
	}
	return out, nil
}

// sameInit checks a later span's init segment against the first's.
func (s *Stitcher) sameInit(init []byte) error {
	_, avcC, err := videoConfig(init)
	if err != nil {
		return fmt.Errorf("fmp4: %w: span %d's init segment: %w", ErrStitch, s.index, err)
	}
	if !bytes.Equal(avcC, s.avcC) {
		return fmt.Errorf("fmp4: %w: span %d's SPS/PPS (avcC %x) differ from span 0's (%x): its encoder ran with other settings", ErrStitch, s.index, avcC, s.avcC)
	}
	if !bytes.Equal(init, s.init) {
		return fmt.Errorf("fmp4: %w: span %d's init segment differs from span 0's (same SPS/PPS)", ErrStitch, s.index)
	}
	return nil
}

// EndSpan closes the current span once its encoder has delivered
// everything; the next Add starts the next span.
func (s *Stitcher) EndSpan() error {
	if !s.started {
		return fmt.Errorf("fmp4: %w: span %d ended without output", ErrStitch, s.index)
	}
	s.base += s.next
	s.index++
	s.started = false
	return nil
}

// rewriteMoof renumbers a moof (whole box, header included) and moves its
// decode time onto the stitched timeline, in place. The fragment's decode
// time must be where the span's previous fragment ended.
func (s *Stitcher) rewriteMoof(moof []byte) error {
	_, hdr, _, err := parseHeader(moof, int64(len(moof)))
	if err != nil {
		return err
	}
	cs, err := children(moof[hdr:]) // payloads alias moof: rewritten in place
	if err != nil {
		return err
	}
	trafs := 0
	for _, c := range cs {
		p := c.payload
		switch c.typ {
		case "mfhd": // version/flags(4) sequence_number(4)
			if len(p) < 8 {
				return fmt.Errorf("%w: short mfhd", ErrMalformed)
			}
			if s.seq == math.MaxUint32 {
				return fmt.Errorf("%w: more than 2³²−1 fragments", ErrStitch)
			}
			s.seq++
			binary.BigEndian.PutUint32(p[4:], s.seq)
		case "traf":
			if trafs++; trafs > 1 {
				return fmt.Errorf("%w: a fragment with %d tracks; spans carry one", ErrStitch, trafs)
			}
			if err := s.rewriteTraf(p); err != nil {
				return err
			}
		}
	}
	if trafs == 0 {
		return fmt.Errorf("%w: moof without traf", ErrMalformed)
	}
	return nil
}

// rewriteTraf moves a traf's tfdt (ISO/IEC 14496-12 8.8.12) and advances
// the span's timeline by its samples' durations.
func (s *Stitcher) rewriteTraf(traf []byte) error {
	var (
		tfdt        []byte
		defDuration uint32
		duration    uint64
	)
	cs, err := children(traf)
	if err != nil {
		return err
	}
	for _, c := range cs {
		switch c.typ {
		case "tfhd":
			if defDuration, err = tfhdDefaultDuration(c.payload); err != nil {
				return err
			}
		case "tfdt":
			tfdt = c.payload
		case "trun":
			run, err := trunInfo(c.payload, defDuration)
			if err != nil {
				return err
			}
			if err := s.checkDelay(run); err != nil {
				return err
			}
			duration += run.duration
		}
	}
	if tfdt == nil {
		return fmt.Errorf("%w: traf without tfdt", ErrStitch)
	}
	if len(tfdt) < 8 || (tfdt[0] == 1 && len(tfdt) < 12) {
		return fmt.Errorf("%w: short tfdt", ErrMalformed)
	}
	var local uint64
	if tfdt[0] == 1 {
		local = binary.BigEndian.Uint64(tfdt[4:])
	} else {
		local = uint64(binary.BigEndian.Uint32(tfdt[4:]))
	}
	if local != s.next {
		return fmt.Errorf("%w: fragment decode time %d, want %d (where the one before ended)", ErrStitch, local, s.next)
	}
	at := s.base + local
	switch {
	case tfdt[0] == 1:
		binary.BigEndian.PutUint64(tfdt[4:], at)
	case at <= math.MaxUint32:
		binary.BigEndian.PutUint32(tfdt[4:], uint32(at))
	default:
		return fmt.Errorf("%w: decode time %d does not fit a version 0 tfdt", ErrStitch, at)
	}
	s.next = local + duration
	return nil
}

// checkDelay compares the composition offset of a span's first sample
// (its keyframe: presented first, decoded first) with the first span's.
// The offset is the encoder's reordering delay; a span with another
// one would be presented shifted against the rest.
func (s *Stitcher) checkDelay(run trun) error {
	if !s.fresh || run.samples == 0 {
		return nil
	}
	s.fresh = false
	if s.index == 0 {
		s.delay = run.firstCTO
		return nil
	}
	if run.firstCTO != s.delay {
		return fmt.Errorf("%w: the first frame's composition offset is %d, span 0's %d: the encoder's reordering delay differs", ErrStitch, run.firstCTO, s.delay)
	}
	return nil
}

// tfhdDefaultDuration returns a tfhd's default sample duration (ISO/IEC
// 14496-12 8.8.7), or 0 when it sets none.
func tfhdDefaultDuration(p []byte) (uint32, error) {
	if len(p) < 8 {
		return 0, fmt.Errorf("%w: short tfhd", ErrMalformed)
	}
	flags := binary.BigEndian.Uint32(p) & 0xffffff
	if flags&0x8 == 0 { // default-sample-duration-present
		return 0, nil
	}
	off := 8            // version/flags(4) track_ID(4)
	if flags&0x1 != 0 { // base-data-offset-present
		off += 8
	}
	if flags&0x2 != 0 { // sample-description-index-present
		off += 4
	}
	if len(p) < off+4 {
		return 0, fmt.Errorf("%w: short tfhd", ErrMalformed)
	}
	return binary.BigEndian.Uint32(p[off:]), nil
}
