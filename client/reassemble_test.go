package client_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"testing"

	"github.com/whirl-dev/whirl/client"
)

// FuzzReassemble drives a Reassembler with a script of chunks (in order,
// near the expected offset, or at any int64 offset) and checks it against a
// model: a chunk is accepted exactly when it starts where the accepted bytes
// end and nothing failed before; everything else is ErrOutOfOrder and sticks.
// Verify passes only for the true size and checksum. It must never panic.
//
// Script ops, one byte each (mod 3), then their operands:
//
//	0 n data...      a chunk at the expected offset
//	1 d n data...    a chunk at expected+int8(d)
//	2 o[8] n data... a chunk at int64(big-endian o)
//
// The seed corpus is in testdata/fuzz/FuzzReassemble.
func FuzzReassemble(f *testing.F) {
	f.Fuzz(func(t *testing.T, script []byte) {
		var out bytes.Buffer
		r := client.NewReassembler(&out)
		var want []byte
		failed := false
		next := func() (byte, bool) {
			if len(script) == 0 {
				return 0, false
			}
			b := script[0]
			script = script[1:]
			return b, true
		}
		for len(script) > 0 {
			op, _ := next()
			offset := int64(len(want))
			switch op % 3 {
			case 1:
				d, _ := next()
				offset += int64(int8(d))
			case 2:
				if len(script) < 8 {
					script = nil
					continue
				}
				offset = int64(binary.BigEndian.Uint64(script))
				script = script[8:]
			}
			n, _ := next()
			data := script[:min(int(n), len(script))]
			script = script[len(data):]

			err := r.Write(offset, data)
			switch {
			case failed:
				if err == nil {
					t.Fatalf("Write(%d, %d bytes) succeeded after an earlier failure", offset, len(data))
				}
			case offset != int64(len(want)):
				if !errors.Is(err, client.ErrOutOfOrder) {
					t.Fatalf("Write(%d, %d bytes) with %d received: %v, want ErrOutOfOrder", offset, len(data), len(want), err)
				}
				failed = true
			default:
				if err != nil {
					t.Fatalf("Write(%d, %d bytes) in order: %v", offset, len(data), err)
				}
				want = append(want, data...)
			}
		}

		if !bytes.Equal(out.Bytes(), want) {
			t.Fatalf("wrote %d bytes, want the %d accepted", out.Len(), len(want))
		}
		sum := sha256.Sum256(want)
		hexSum := hex.EncodeToString(sum[:])
		if r.Size() != int64(len(want)) || r.Sum() != hexSum {
			t.Fatalf("Size %d Sum %s, want %d %s", r.Size(), r.Sum(), len(want), hexSum)
		}
		if failed {
			if err := r.Verify(int64(len(want)), hexSum); err == nil {
				t.Fatal("Verify passed after a failed Write")
			}
			return
		}
		// Each Verify on its own Reassembler holding the accepted bytes:
		// a failed Verify sticks.
		verify := func(size int64, sum string) error {
			r := client.NewReassembler(&bytes.Buffer{})
			if err := r.Write(0, want); err != nil {
				t.Fatal(err)
			}
			return r.Verify(size, sum)
		}
		if err := verify(int64(len(want))+1, hexSum); !errors.Is(err, client.ErrSizeMismatch) {
			t.Fatalf("Verify with the wrong size: %v", err)
		}
		wrong := []byte(hexSum)
		wrong[0] ^= 1
		if err := verify(int64(len(want)), string(wrong)); !errors.Is(err, client.ErrChecksumMismatch) {
			t.Fatalf("Verify with the wrong checksum: %v", err)
		}
		if err := r.Verify(int64(len(want)), hexSum); err != nil {
			t.Fatalf("Verify with the true size and checksum: %v", err)
		}
	})
}

type failingWriter struct{ short bool }

func (w failingWriter) Write(p []byte) (int, error) {
	if w.short {
		return len(p) / 2, nil
	}
	return 0, errors.New("disk full")
}

func TestReassemblerWriterErrors(t *testing.T) {
	r := client.NewReassembler(failingWriter{})
	if err := r.Write(0, []byte("abc")); err == nil || errors.Is(err, client.ErrOutOfOrder) {
		t.Errorf("failing writer: %v", err)
	}
	if err := r.Write(0, []byte("abc")); err == nil {
		t.Error("error did not stick")
	}
	r = client.NewReassembler(failingWriter{short: true})
	if err := r.Write(0, []byte("abcd")); err == nil {
		t.Error("short write not reported")
	}
	r = client.NewReassembler(&bytes.Buffer{})
	if err := r.Write(0, []byte("ab")); err != nil {
		t.Fatal(err)
	}
	if err := r.Write(math.MaxInt64, []byte("x")); !errors.Is(err, client.ErrOutOfOrder) {
		t.Errorf("huge offset: %v", err)
	}
}
