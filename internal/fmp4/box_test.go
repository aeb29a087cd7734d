package fmp4

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// box builds a box with a 32-bit size.
func box(typ string, payload ...[]byte) []byte {
	p := bytes.Join(payload, nil)
	b := binary.BigEndian.AppendUint32(nil, uint32(8+len(p)))
	return append(append(b, typ...), p...)
}

// largeBox builds a box with a 64-bit largesize.
func largeBox(typ string, payload []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, 1)
	b = append(b, typ...)
	b = binary.BigEndian.AppendUint64(b, uint64(16+len(payload)))
	return append(b, payload...)
}

func u32(v ...uint32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.BigEndian.AppendUint32(b, x)
	}
	return b
}

// moof builds a moof whose trun lists the given sample sizes.
func moof(sizes ...uint32) []byte {
	trun := u32(0x000201, uint32(len(sizes)), 0) // flags: data-offset, sample-size
	trun = append(trun, u32(sizes...)...)
	return box("moof", box("mfhd", u32(0, 1)), box("traf", box("tfhd", u32(0, 1)), box("trun", trun)))
}

func mdat(n int) []byte { return box("mdat", make([]byte, n)) }

func TestBoxes(t *testing.T) {
	data := bytes.Join([][]byte{box("ftyp", []byte("iso5")), largeBox("moov", []byte("xyz")), box("free")}, nil)
	got, err := Boxes(data)
	if err != nil {
		t.Fatal(err)
	}
	want := []Box{{"ftyp", 0, 12}, {"moov", 12, 19}, {"free", 31, 8}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Boxes = %v, want %v", got, want)
	}
	// size 0: to the end of the data
	got, err = Boxes(append(box("ftyp"), 0, 0, 0, 0, 'm', 'd', 'a', 't', 1, 2, 3))
	if err != nil || len(got) != 2 || got[1].Size != 11 {
		t.Errorf("size-0 box: %v, %v", got, err)
	}
	for name, bad := range map[string][]byte{
		"truncated header":   {0, 0, 0},
		"overrun":            append(u32(100), "ftyp"...),
		"size below header":  append(u32(7), "ftyp"...),
		"binary type":        append(u32(8), 0, 1, 2, 3),
		"largesize overrun":  append(append(u32(1), "mdat"...), binary.BigEndian.AppendUint64(nil, 1<<40)...),
		"largesize too tiny": append(append(u32(1), "mdat"...), binary.BigEndian.AppendUint64(nil, 8)...),
	} {
		if _, err := Boxes(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", name, err)
		}
	}
}

func TestReadBox(t *testing.T) {
	stream := bytes.Join([][]byte{box("ftyp", []byte("iso5")), largeBox("mdat", []byte("0123456789"))}, nil)
	r := bufio.NewReader(bytes.NewReader(stream))
	for _, want := range []string{"ftyp", "mdat"} {
		typ, data, err := readBox(r)
		if err != nil || typ != want {
			t.Fatalf("readBox = %q, %v; want %q", typ, err, want)
		}
		if want == "mdat" && !bytes.HasSuffix(data, []byte("0123456789")) {
			t.Errorf("mdat data %q", data)
		}
	}
	if _, _, err := readBox(r); err != io.EOF {
		t.Errorf("at end: %v, want io.EOF", err)
	}
	for name, bad := range map[string][]byte{
		"size 0 in a stream": append(u32(0), "mdat"...),
		"unknown and huge":   append(u32(1<<20), "zzzz"...),
		"mdat too big":       append(append(u32(1), "mdat"...), binary.BigEndian.AppendUint64(nil, 1<<40)...),
		"cut header":         {0, 0, 0, 9, 'f'},
		"cut body":           append(u32(100), "ftyp"...),
	} {
		_, _, err := readBox(bufio.NewReader(bytes.NewReader(bad)))
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", name, err)
		}
	}
}

func TestSegmenter(t *testing.T) {
	ftyp, moov := box("ftyp", []byte("iso5")), box("moov", box("mvhd"))
	type seg struct {
		init   bool
		types  string
		frames int
	}
	for _, tc := range []struct {
		name    string
		boxes   [][]byte
		want    []seg
		wantErr string
	}{
		{"plain", [][]byte{ftyp, moov, moof(3, 4), mdat(7), moof(5), mdat(5)},
			[]seg{{true, "[ftyp moov]", 0}, {false, "[moof mdat]", 2}, {false, "[moof mdat]", 1}}, ""},
		{"extra boxes ride with the next segment", [][]byte{ftyp, box("free"), moov, box("styp"), box("sidx"), moof(1), mdat(1), box("mfra")},
			[]seg{{true, "[ftyp free moov]", 0}, {false, "[styp sidx moof mdat]", 1}, {false, "[mfra]", 0}}, ""},
		{"no ftyp", [][]byte{moov}, nil, "without a leading ftyp"},
		{"mdat before moof", [][]byte{ftyp, moov, mdat(1)}, nil, "mdat without a preceding moof"},
		{"two moofs", [][]byte{ftyp, moov, moof(1), moof(1)}, nil, "moof follows a moof"},
		{"second moov", [][]byte{ftyp, moov, moov}, nil, "second"},
		{"sizes disagree", [][]byte{ftyp, moov, moof(3), mdat(4)}, nil, "mdat holds 4"},
		{"moof at the end", [][]byte{ftyp, moov, moof(1)}, nil, "moof without its mdat"},
		{"no moov", [][]byte{ftyp}, nil, "without an init segment"},
		{"box between moof and mdat", [][]byte{ftyp, moov, moof(1), box("free"), mdat(1)}, nil, "between moof and mdat"},
		{"bad trun", [][]byte{ftyp, moov, box("moof", box("traf", box("trun", u32(0x200, 1000))))}, nil, "trun lists"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s segmenter
			var got []seg
			var err error
			for _, b := range tc.boxes {
				var sg *Segment
				typ := string(b[4:8])
				if sg, err = s.add(typ, b); err != nil {
					break
				}
				if sg != nil {
					got = append(got, seg{sg.Init, fmt.Sprint(types(t, sg.Data)), sg.Frames})
				}
			}
			if err == nil {
				var sg *Segment
				if sg, err = s.finish(); sg != nil {
					got = append(got, seg{sg.Init, fmt.Sprint(types(t, sg.Data)), sg.Frames})
				}
			}
			if tc.wantErr != "" {
				if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want ErrMalformed with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("segments %v, want %v", got, tc.want)
			}
		})
	}
}

func types(t *testing.T, b []byte) []string {
	t.Helper()
	bs, err := Boxes(b)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, x := range bs {
		out = append(out, x.Type)
	}
	return out
}

func TestCodecsErrors(t *testing.T) {
	for name, init := range map[string][]byte{
		"no moov":  box("ftyp"),
		"no video": box("moov", box("trak", box("mdia", box("hdlr", u32(0, 0), []byte("soun"))))),
		"hevc": box("moov", box("trak", box("mdia", box("hdlr", u32(0, 0), []byte("vide")),
			box("minf", box("stbl", box("stsd", u32(0, 1), box("hvc1", make([]byte, 78)))))))),
	} {
		if c, err := Codecs(init); err == nil {
			t.Errorf("%s: Codecs = %q, want an error", name, c)
		}
	}
	avc := box("moov", box("trak", box("mdia", box("hdlr", u32(0, 0), []byte("vide")),
		box("minf", box("stbl", box("stsd", u32(0, 1), box("avc1", make([]byte, 78), box("avcC", []byte{1, 0x4d, 0x40, 0x1e, 0xff}))))))))
	if c, err := Codecs(avc); err != nil || c != "avc1.4d401e" {
		t.Errorf("Codecs = %q, %v; want avc1.4d401e", c, err)
	}
	if m, err := MIMEType(avc); err != nil || m != `video/mp4; codecs="avc1.4d401e"` {
		t.Errorf("MIMEType = %q, %v", m, err)
	}
}
