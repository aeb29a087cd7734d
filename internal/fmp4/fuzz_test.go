package fmp4

import (
	"bytes"
	"errors"
	"testing"
)

// stream is a well-formed fragmented MP4: init segment and two fragments.
func stream() []byte {
	return bytes.Join([][]byte{initSegment(0x64), frag(1, 0), frag(2, 1024)}, nil)
}

// FuzzReadSegments: any input either reads as segments that add up to the
// input, with an init segment first, or fails with ErrMalformed (or the
// sink's error); it never panics and never allocates past its limits.
func FuzzReadSegments(f *testing.F) {
	f.Add(stream())
	f.Add(append(stream(), box("mfra")...))
	f.Add(append(box("ftyp"), largeBox("moov", nil)...))
	f.Add([]byte{0, 0, 0, 1, 'm', 'd', 'a', 't', 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		var got []byte
		var segs []Segment
		frames, err := ReadSegments(bytes.NewReader(data), func(s Segment) error {
			got = append(got, s.Data...)
			segs = append(segs, s)
			return nil
		})
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			if !bytes.HasPrefix(data, got) {
				t.Fatal("delivered bytes are not a prefix of the input")
			}
			return
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("segments hold %d bytes, the input %d", len(got), len(data))
		}
		if len(segs) == 0 || !segs[0].Init {
			t.Fatal("no init segment first")
		}
		n := 0
		for _, s := range segs {
			n += s.Frames
		}
		if n != frames {
			t.Fatalf("segments hold %d frames, ReadSegments says %d", n, frames)
		}
	})
}

// FuzzStitcher: a span's stream of any bytes, read into segments, either
// stitches after a well-formed first span or fails with ErrStitch or
// ErrMalformed; it never panics. What it passes on reads back as boxes.
func FuzzStitcher(f *testing.F) {
	f.Add(stream())
	f.Add(bytes.Join([][]byte{initSegment(0x64), fragment(1, 1, 0, sample{512, 2, -512})}, nil))
	f.Add(bytes.Join([][]byte{initSegment(0x64), box("sidx"), frag(1, 0), box("mfra")}, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		var out []byte
		s := NewStitcher(func(seg Segment) error { out = append(out, seg.Data...); return nil })
		first, err := stitch(0, [][]byte{initSegment(0x64), frag(1, 0)})
		if err != nil {
			t.Fatal(err)
		}
		for _, seg := range first {
			if err := s.Add(seg); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.EndSpan(); err != nil {
			t.Fatal(err)
		}
		_, err = ReadSegments(bytes.NewReader(data), s.Add)
		if err == nil {
			err = s.EndSpan()
		}
		if err != nil && !errors.Is(err, ErrStitch) && !errors.Is(err, ErrMalformed) {
			t.Fatalf("error %v wraps neither ErrStitch nor ErrMalformed", err)
		}
		if _, berr := Boxes(out); berr != nil {
			t.Fatalf("stitched output does not read as boxes: %v", berr)
		}
	})
}

// FuzzBoxes: Boxes never panics, and what it lists tiles the data it read.
func FuzzBoxes(f *testing.F) {
	f.Add(stream())
	f.Add(append(box("ftyp"), 0, 0, 0, 0, 'm', 'd', 'a', 't', 1))
	f.Fuzz(func(t *testing.T, data []byte) {
		boxes, err := Boxes(data)
		var off int64
		for _, b := range boxes {
			if b.Offset != off || b.Size < 8 {
				t.Fatalf("box %v at %d", b, off)
			}
			off += b.Size
		}
		if err == nil && off != int64(len(data)) {
			t.Fatalf("boxes cover %d of %d bytes", off, len(data))
		}
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("error %v does not wrap ErrMalformed", err)
		}
	})
}
