package client

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"math"
	"strings"
)

// Reassembler writes the MediaChunks of a render stream to a writer,
// checking that each starts exactly where the previous one ended, and
// verifies the result against the trailer. Render uses one; it is exported
// for callers that drive the RenderAnimation stream themselves.
//
// Errors are sticky: after the first, every method returns it again.
type Reassembler struct {
	w    io.Writer
	hash hash.Hash
	size int64
	err  error
}

// NewReassembler returns a Reassembler writing to w.
func NewReassembler(w io.Writer) *Reassembler {
	return &Reassembler{w: w, hash: sha256.New()}
}

// Write appends data, which the stream placed at offset. An offset other
// than Size is an error matching ErrOutOfOrder (a gap when larger, an
// overlap when smaller); so is a chunk that would run past the largest
// possible file. A failed or short write to the underlying writer is
// returned as is.
func (r *Reassembler) Write(offset int64, data []byte) error {
	if r.err != nil {
		return r.err
	}
	switch {
	case offset > r.size:
		r.err = fmt.Errorf("%w: gap: chunk at offset %d, %d bytes received so far", ErrOutOfOrder, offset, r.size)
	case offset < r.size:
		r.err = fmt.Errorf("%w: overlap: chunk at offset %d, %d bytes received so far", ErrOutOfOrder, offset, r.size)
	case int64(len(data)) > math.MaxInt64-r.size:
		r.err = fmt.Errorf("%w: chunk of %d bytes at offset %d overflows", ErrOutOfOrder, len(data), offset)
	}
	if r.err != nil {
		return r.err
	}
	n, err := r.w.Write(data)
	if err == nil && n != len(data) {
		err = io.ErrShortWrite
	}
	if err != nil {
		r.err = fmt.Errorf("writing video: %w", err)
		return r.err
	}
	r.hash.Write(data)
	r.size += int64(len(data))
	return nil
}

// Size is the number of bytes written so far.
func (r *Reassembler) Size() int64 { return r.size }

// Sum is the SHA-256 of the bytes written so far, in lowercase hex.
func (r *Reassembler) Sum() string { return hex.EncodeToString(r.hash.Sum(nil)) }

// Verify checks the bytes written against a trailer's total size and
// SHA-256 (hex, either case): ErrSizeMismatch or ErrChecksumMismatch if
// they differ.
func (r *Reassembler) Verify(totalBytes int64, sha256Hex string) error {
	if r.err != nil {
		return r.err
	}
	if totalBytes != r.size {
		r.err = fmt.Errorf("%w: received %d bytes, trailer says %d", ErrSizeMismatch, r.size, totalBytes)
		return r.err
	}
	if sum := r.Sum(); !strings.EqualFold(sum, sha256Hex) {
		r.err = fmt.Errorf("%w: received %s, trailer says %q", ErrChecksumMismatch, sum, sha256Hex)
		return r.err
	}
	return nil
}
