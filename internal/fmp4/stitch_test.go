package fmp4

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
)

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// initSegment builds ftyp+moov with one H.264 video track whose avcC holds
// profile.
func initSegment(profile byte) []byte {
	avcC := []byte{1, profile, 0x40, 0x1e, 0xff}
	return append(box("ftyp", []byte("iso5")), box("moov", box("trak", box("mdia",
		box("hdlr", u32(0, 0), []byte("vide")),
		box("minf", box("stbl", box("stsd", u32(0, 1), box("avc1", make([]byte, 78), box("avcC", avcC))))))))...)
}

// sample is one trun entry.
type sample struct {
	dur, size uint32
	cto       int32
}

// fragment builds a moof+mdat: mfhd sequence seq, a tfdt of version
// tfdtV at decode, and a trun (version 1 when an offset is negative)
// listing samples.
func fragment(seq uint32, tfdtV byte, decode uint64, samples ...sample) []byte {
	tfdt := box("tfdt", u32(0), u32(uint32(decode)))
	if tfdtV == 1 {
		tfdt = box("tfdt", u32(1<<24), u64(decode))
	}
	var trunV uint32
	var per []byte
	var size uint32
	for _, s := range samples {
		if s.cto < 0 {
			trunV = 1
		}
		per = append(per, u32(s.dur, s.size, uint32(s.cto))...)
		size += s.size
	}
	// flags: data-offset, duration, size, composition offset
	trun := append(u32(trunV<<24|0xb01, uint32(len(samples)), 0), per...)
	moof := box("moof", box("mfhd", u32(0, seq)), box("traf", box("tfhd", u32(0x020000, 1)), tfdt, box("trun", trun)))
	return append(moof, mdat(int(size))...)
}

// frag is a fragment of two 512-tick frames, the first offset by 1024.
func frag(seq uint32, decode uint64) []byte {
	return fragment(seq, 0, decode, sample{512, 3, 1024}, sample{512, 4, 0})
}

// timing reads back a stitched media segment's mfhd sequence number and
// tfdt, and its top-level box types.
func timing(t *testing.T, data []byte) (seq uint32, decode uint64, types []string) {
	t.Helper()
	bs, err := Boxes(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		types = append(types, b.Type)
		if b.Type != "moof" {
			continue
		}
		moof := data[b.Offset+8 : b.Offset+b.Size]
		mfhd, _ := find(moof, "mfhd")
		traf, _ := find(moof, "traf")
		tfdt, _ := find(traf, "tfdt")
		seq = binary.BigEndian.Uint32(mfhd[4:])
		if decode = uint64(binary.BigEndian.Uint32(tfdt[4:])); tfdt[0] == 1 {
			decode = binary.BigEndian.Uint64(tfdt[4:])
		}
	}
	return seq, decode, types
}

// stitch feeds spans (each an init segment, then media segments) to a
// Stitcher starting at sequence number seq, and returns what reached the
// sink and the first error.
func stitch(seq uint32, spans ...[][]byte) ([]Segment, error) {
	var out []Segment
	s := NewStitcher(func(seg Segment) error { out = append(out, seg); return nil })
	s.seq = seq
	for _, span := range spans {
		for i, data := range span {
			if err := s.Add(Segment{Init: i == 0 && string(data[4:8]) == "ftyp", Data: bytes.Clone(data)}); err != nil {
				return out, err
			}
		}
		if err := s.EndSpan(); err != nil {
			return out, err
		}
	}
	return out, nil
}

func TestStitcher(t *testing.T) {
	init0, init1 := initSegment(0x64), initSegment(0x4d)
	type want struct {
		seq    uint32
		decode uint64
		types  string
	}
	for _, tc := range []struct {
		name    string
		seq     uint32 // the Stitcher's sequence number before the first fragment
		spans   [][][]byte
		want    []want // the media segments out, in order
		wantErr string // ErrStitch (or ErrMalformed) with this text
	}{
		{name: "runs on", spans: [][][]byte{{init0, frag(1, 0), frag(2, 1024)}, {init0, frag(1, 0), frag(2, 1024)}},
			want: []want{{1, 0, "[moof mdat]"}, {2, 1024, "[moof mdat]"}, {3, 2048, "[moof mdat]"}, {4, 3072, "[moof mdat]"}}},
		{name: "tfdt version 1 keeps 64 bits",
			spans: [][][]byte{
				{init0, fragment(1, 1, 0, sample{math.MaxUint32, 1, 0}, sample{math.MaxUint32, 1, 0})},
				{init0, fragment(1, 1, 0, sample{math.MaxUint32, 1, 0}, sample{math.MaxUint32, 1, 0})}},
			want: []want{{1, 0, "[moof mdat]"}, {2, 2 * math.MaxUint32, "[moof mdat]"}}},
		{name: "a time past 32 bits in a version 0 tfdt",
			spans: [][][]byte{
				{init0, fragment(1, 0, 0, sample{math.MaxUint32, 1, 0}, sample{math.MaxUint32, 1, 0})},
				{init0, fragment(1, 0, 0, sample{1, 1, 0})}},
			want: []want{{1, 0, "[moof mdat]"}}, wantErr: "does not fit a version 0 tfdt"},
		{name: "mfhd sequence number at its last value", seq: math.MaxUint32 - 1,
			spans: [][][]byte{{init0, frag(1, 0), frag(2, 1024)}},
			want:  []want{{math.MaxUint32, 0, "[moof mdat]"}}, wantErr: "more than 2³²−1 fragments"},
		{name: "reordering delay differs",
			spans: [][][]byte{{init0, frag(1, 0)}, {init0, fragment(1, 0, 0, sample{512, 3, 0}, sample{512, 4, 0})}},
			want:  []want{{1, 0, "[moof mdat]"}}, wantErr: "reordering delay differs"},
		{name: "negative offsets alike",
			spans: [][][]byte{{init0, fragment(1, 0, 0, sample{512, 3, -512})}, {init0, fragment(1, 0, 0, sample{512, 3, -512})}},
			want:  []want{{1, 0, "[moof mdat]"}, {2, 512, "[moof mdat]"}}},
		{name: "trailing mfra", spans: [][][]byte{{init0, frag(1, 0), box("mfra", box("mfro", u32(0, 16)))}},
			want: []want{{1, 0, "[moof mdat]"}}, wantErr: `top-level "mfra" box`},
		{name: "free after the init segment", spans: [][][]byte{{init0, append(box("free"), frag(1, 0)...)}},
			wantErr: `top-level "free" box`},
		{name: "trailing sidx is dropped", spans: [][][]byte{{init0, frag(1, 0), box("sidx", u32(0))}, {init0, frag(1, 0)}},
			want: []want{{1, 0, "[moof mdat]"}, {2, 1024, "[moof mdat]"}}},
		{name: "leading styp and sidx", spans: [][][]byte{{init0, append(append(box("styp", []byte("msdh")), box("sidx", u32(0))...), frag(1, 0)...)}},
			want: []want{{1, 0, "[styp moof mdat]"}}},
		{name: "another SPS", spans: [][][]byte{{init0, frag(1, 0)}, {init1, frag(1, 0)}},
			want: []want{{1, 0, "[moof mdat]"}}, wantErr: "SPS/PPS"},
		{name: "decode time jumps", spans: [][][]byte{{init0, frag(1, 0), frag(2, 2048)}},
			want: []want{{1, 0, "[moof mdat]"}}, wantErr: "want 1024"},
		{name: "media before the init segment", spans: [][][]byte{{init0}, {frag(1, 0)}}, wantErr: "media before its init segment"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := stitch(tc.seq, tc.spans...)
			if tc.wantErr != "" {
				if !errors.Is(err, ErrStitch) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("err = %v, want ErrStitch with %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if len(out) == 0 || !out[0].Init || !bytes.Equal(out[0].Data, init0) {
				t.Fatalf("first out is not span 0's init segment: %v", out)
			}
			var got []want
			for _, seg := range out[1:] {
				seq, decode, types := timing(t, seg.Data)
				got = append(got, want{seq, decode, fmt.Sprint(types)})
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("media out %v, want %v", got, tc.want)
			}
		})
	}
}
