// Package fmp4 reads and writes fragmented MP4 (ISO/IEC 14496-12) as byte
// streams: top-level boxes, a stream cut into its init segment and media
// segments (ReadSegments), the stitching of several such streams into one
// (Stitcher), and the RFC 6381 codecs string of an init segment. It runs no
// process and starts no goroutine: it is fed bytes and returns bytes.
//
// Words as ISO BMFF uses them: the init segment is ftyp+moov; a fragment
// is one moof with its mdat; a media segment is a fragment with the boxes
// that lead it (styp, sidx, ...).
package fmp4

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Box is one ISO-BMFF (MP4) box found by Boxes.
type Box struct {
	Type   string // four-character code, e.g. "moof"
	Offset int64  // offset of the box header in the data
	Size   int64  // whole box, header included
}

// ErrMalformed is wrapped by every error about MP4 data that does not parse:
// bad sizes, garbage types, truncated boxes, boxes out of order.
var ErrMalformed = errors.New("malformed MP4")

// ErrTruncated wraps ErrMalformed for a stream that ends inside a box or
// before its init segment is complete: whoever wrote it stopped early,
// which the writer's own status usually explains better.
var ErrTruncated = fmt.Errorf("%w: truncated", ErrMalformed)

// Size limits for top-level boxes read from a stream. Random bytes almost never
// pass the type check; these stop a plausible-looking header from making the
// reader allocate gigabytes.
const (
	maxMdat      = 64 << 20 // one fragment's media data
	maxIndexBox  = 16 << 20 // moov, moof, mfra, sidx, ssix
	maxKnownBox  = 1 << 20  // ftyp, styp, free, emsg, ...
	maxUnknowBox = 64 << 10 // anything else
)

func maxSize(typ string) int64 {
	switch typ {
	case "mdat":
		return maxMdat
	case "moov", "moof", "mfra", "sidx", "ssix":
		return maxIndexBox
	case "ftyp", "styp", "free", "skip", "prft", "emsg", "uuid", "meta", "pdin":
		return maxKnownBox
	}
	return maxUnknowBox
}

func validType(t []byte) bool {
	for _, c := range t {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// parseHeader decodes a box header at the start of b (which holds at least
// the 8 header bytes, 16 when the 32-bit size is 1). It returns the type, the
// header length and the total size. avail is how many bytes the enclosing
// container has from the start of this box, or -1 when unknown (a stream).
func parseHeader(b []byte, avail int64) (typ string, hdr int, size int64, err error) {
	if len(b) < 8 {
		return "", 0, 0, fmt.Errorf("%w: truncated box header (%d bytes)", ErrMalformed, len(b))
	}
	size = int64(binary.BigEndian.Uint32(b))
	if !validType(b[4:8]) {
		return "", 0, 0, fmt.Errorf("%w: box type %q is not a four-character code", ErrMalformed, b[4:8])
	}
	typ = string(b[4:8])
	hdr = 8
	switch size {
	case 0:
		if avail < 0 {
			return "", 0, 0, fmt.Errorf("%w: box %q extends to end of file, not allowed in a stream", ErrMalformed, typ)
		}
		size = avail
	case 1:
		if len(b) < 16 {
			return "", 0, 0, fmt.Errorf("%w: truncated largesize header of %q", ErrMalformed, typ)
		}
		u := binary.BigEndian.Uint64(b[8:16])
		if u > 1<<62 {
			return "", 0, 0, fmt.Errorf("%w: box %q has absurd largesize %d", ErrMalformed, typ, u)
		}
		size = int64(u)
		hdr = 16
	}
	if size < int64(hdr) {
		return "", 0, 0, fmt.Errorf("%w: box %q has size %d, smaller than its header", ErrMalformed, typ, size)
	}
	if avail >= 0 && size > avail {
		return "", 0, 0, fmt.Errorf("%w: box %q of %d bytes overruns its container (%d left)", ErrMalformed, typ, size, avail)
	}
	return typ, hdr, size, nil
}

// Boxes lists the top-level boxes of data in order. It fails if data does not
// split exactly into well-formed boxes.
func Boxes(data []byte) ([]Box, error) {
	var out []Box
	var off int64
	for off < int64(len(data)) {
		rest := data[off:]
		typ, _, size, err := parseHeader(rest, int64(len(rest)))
		if err != nil {
			return out, fmt.Errorf("at offset %d: %w", off, err)
		}
		out = append(out, Box{Type: typ, Offset: off, Size: size})
		off += size
	}
	return out, nil
}

// child is a box inside a byte slice: its type and payload (header stripped).
type child struct {
	typ     string
	payload []byte
}

// children splits b into boxes.
func children(b []byte) ([]child, error) {
	var out []child
	for len(b) > 0 {
		typ, hdr, size, err := parseHeader(b, int64(len(b)))
		if err != nil {
			return nil, err
		}
		out = append(out, child{typ, b[hdr:size]})
		b = b[size:]
	}
	return out, nil
}

// find returns the payload of the first child of type typ.
func find(b []byte, typ string) ([]byte, error) {
	cs, err := children(b)
	if err != nil {
		return nil, err
	}
	for _, c := range cs {
		if c.typ == typ {
			return c.payload, nil
		}
	}
	return nil, fmt.Errorf("%w: no %q box", ErrMalformed, typ)
}

// readBox reads one whole top-level box from r. It returns io.EOF only when r
// ends cleanly between boxes.
func readBox(r *bufio.Reader) (typ string, data []byte, err error) {
	head, err := r.Peek(8)
	if err != nil {
		if err == io.EOF && len(head) == 0 {
			return "", nil, io.EOF
		}
		if err == io.EOF {
			return "", nil, fmt.Errorf("%w: stream ends inside a box header (%d bytes)", ErrTruncated, len(head))
		}
		return "", nil, err
	}
	if binary.BigEndian.Uint32(head) == 1 {
		if head, err = r.Peek(16); err != nil {
			if err == io.EOF {
				err = fmt.Errorf("%w: stream ends inside a largesize box header", ErrTruncated)
			}
			return "", nil, err
		}
	}
	typ, _, size, err := parseHeader(head, -1)
	if err != nil {
		return "", nil, err
	}
	if lim := maxSize(typ); size > lim {
		return "", nil, fmt.Errorf("%w: box %q of %d bytes exceeds the %d-byte limit for it", ErrMalformed, typ, size, lim)
	}
	data = make([]byte, size)
	if n, err := io.ReadFull(r, data); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return "", nil, fmt.Errorf("%w: stream ends inside box %q (%d of %d bytes)", ErrTruncated, typ, n, size)
		}
		return "", nil, err
	}
	return typ, data, nil
}

// fragmentInfo checks a moof box (whole, header included) and returns the
// number of samples its track runs describe and, when every run lists sample
// sizes, their sum (else -1).
func fragmentInfo(moof []byte) (samples int, bytes int64, err error) {
	_, hdr, _, err := parseHeader(moof, int64(len(moof)))
	if err != nil {
		return 0, 0, err
	}
	cs, err := children(moof[hdr:])
	if err != nil {
		return 0, 0, err
	}
	bytes = 0
	trafs := 0
	for _, c := range cs {
		if c.typ != "traf" {
			continue
		}
		trafs++
		tcs, err := children(c.payload)
		if err != nil {
			return 0, 0, err
		}
		for _, tc := range tcs {
			if tc.typ != "trun" {
				continue
			}
			run, err := trunInfo(tc.payload, 0)
			if err != nil {
				return 0, 0, err
			}
			samples += run.samples
			if run.bytes < 0 || bytes < 0 {
				bytes = -1
			} else {
				bytes += run.bytes
			}
		}
	}
	if trafs == 0 {
		return 0, 0, fmt.Errorf("%w: moof without traf", ErrMalformed)
	}
	return samples, bytes, nil
}

// trun is what a track run (ISO/IEC 14496-12 8.8.8) says of its samples.
type trun struct {
	samples  int
	bytes    int64  // sum of the sample sizes, -1 when they are not listed
	duration uint64 // sum of the sample durations
	firstCTO int64  // the first sample's composition time offset
}

// trunInfo decodes a trun payload; samples without a duration of their own
// last defaultDuration.
func trunInfo(p []byte, defaultDuration uint32) (trun, error) {
	var t trun
	if len(p) < 8 {
		return t, fmt.Errorf("%w: short trun", ErrMalformed)
	}
	version := p[0]
	flags := binary.BigEndian.Uint32(p) & 0xffffff
	count := binary.BigEndian.Uint32(p[4:])
	off := 8
	if flags&0x1 != 0 { // data-offset-present
		off += 4
	}
	if flags&0x4 != 0 { // first-sample-flags-present
		off += 4
	}
	// per-sample fields, in order: duration, size, flags, composition offset
	per, durAt, sizeAt, ctoAt := 0, -1, -1, -1
	for _, f := range []struct {
		bit uint32
		at  *int
	}{{0x100, &durAt}, {0x200, &sizeAt}, {0x400, nil}, {0x800, &ctoAt}} {
		if flags&f.bit != 0 {
			if f.at != nil {
				*f.at = per
			}
			per += 4
		}
	}
	if off > len(p) || uint64(len(p)-off) < uint64(count)*uint64(per) {
		return t, fmt.Errorf("%w: trun lists %d samples but is only %d bytes", ErrMalformed, count, len(p))
	}
	t.samples = int(count)
	if sizeAt < 0 {
		t.bytes = -1
	}
	if per == 0 {
		// No per-sample fields: nothing to read, however many samples the
		// count claims (a loop over 2^32 of them would take seconds).
		t.duration = uint64(count) * uint64(defaultDuration)
		return t, nil
	}
	for i := range int(count) {
		sample := p[off+i*per:]
		if sizeAt >= 0 {
			t.bytes += int64(binary.BigEndian.Uint32(sample[sizeAt:]))
		}
		if durAt >= 0 {
			t.duration += uint64(binary.BigEndian.Uint32(sample[durAt:]))
		} else {
			t.duration += uint64(defaultDuration)
		}
		if i == 0 && ctoAt >= 0 {
			u := binary.BigEndian.Uint32(sample[ctoAt:])
			if t.firstCTO = int64(u); version == 1 {
				t.firstCTO = int64(int32(u))
			}
		}
	}
	return t, nil
}

// Codecs returns the RFC 6381 codecs parameter of the first video track of
// an init segment (ftyp+moov, or a whole MP4 file), e.g. "avc1.64001f": the
// sample entry's type followed by profile, constraint flags and level from
// its avcC box.
func Codecs(init []byte) (string, error) {
	entry, avcC, err := videoConfig(init)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s.%02x%02x%02x", entry, avcC[1], avcC[2], avcC[3]), nil
}

// videoConfig finds the first video track of an init segment and returns
// its H.264 sample entry type (avc1 or avc3) and the payload of its avcC
// box, the decoder configuration that holds the SPS and PPS.
func videoConfig(init []byte) (entry string, avcC []byte, err error) {
	moov, err := find(init, "moov")
	if err != nil {
		return "", nil, err
	}
	traks, err := children(moov)
	if err != nil {
		return "", nil, err
	}
	for _, t := range traks {
		if t.typ != "trak" {
			continue
		}
		stsd, video, err := trackStsd(t.payload)
		if err != nil {
			return "", nil, err
		}
		if !video {
			continue
		}
		// version/flags(4) entry_count(4), then the sample entries
		if len(stsd) < 8 {
			return "", nil, fmt.Errorf("%w: short stsd", ErrMalformed)
		}
		entries, err := children(stsd[8:])
		if err != nil {
			return "", nil, err
		}
		if len(entries) == 0 {
			return "", nil, fmt.Errorf("%w: empty stsd", ErrMalformed)
		}
		e := entries[0]
		if e.typ != "avc1" && e.typ != "avc3" {
			return "", nil, fmt.Errorf("video sample entry is %q, not H.264 (avc1/avc3)", e.typ)
		}
		// VisualSampleEntry fields before the child boxes: 78 bytes
		if len(e.payload) < 78 {
			return "", nil, fmt.Errorf("%w: short %s sample entry", ErrMalformed, e.typ)
		}
		avcC, err := find(e.payload[78:], "avcC")
		if err != nil {
			return "", nil, err
		}
		if len(avcC) < 4 || avcC[0] != 1 {
			return "", nil, fmt.Errorf("%w: bad avcC", ErrMalformed)
		}
		return e.typ, avcC, nil
	}
	return "", nil, fmt.Errorf("%w: no video track", ErrMalformed)
}

// trackStsd returns a trak's sample description box and whether the track
// is video.
func trackStsd(trak []byte) (stsd []byte, video bool, err error) {
	mdia, err := find(trak, "mdia")
	if err != nil {
		return nil, false, err
	}
	hdlr, err := find(mdia, "hdlr")
	if err != nil {
		return nil, false, err
	}
	// version/flags(4) pre_defined(4) handler_type(4)
	if len(hdlr) < 12 || string(hdlr[8:12]) != "vide" {
		return nil, false, nil
	}
	minf, err := find(mdia, "minf")
	if err != nil {
		return nil, false, err
	}
	stbl, err := find(minf, "stbl")
	if err != nil {
		return nil, false, err
	}
	stsd, err = find(stbl, "stsd")
	return stsd, true, err
}

// MIMEType returns the type to give a browser's MediaSource for an init
// segment, e.g. `video/mp4; codecs="avc1.64001f"`.
func MIMEType(init []byte) (string, error) {
	c, err := Codecs(init)
	if err != nil {
		return "", err
	}
	return `video/mp4; codecs="` + c + `"`, nil
}
