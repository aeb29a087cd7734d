package cache

import (
	"errors"
	"io"
	"sort"
)

// MaxChunk is the most bytes one Chunk carries.
const MaxChunk = 64 << 10

// ErrOutOfRange is a reader whose start offset is past the end of the video.
var ErrOutOfRange = errors.New("offset past the end of the video")

// Chunk is a run of the video's bytes.
type Chunk struct {
	// Offset is the position of Data[0] in the file.
	Offset int64
	// Data is valid until the next call of Next.
	Data []byte
	// SegmentEnd says Data ends a complete segment.
	SegmentEnd bool
}

// Result describes a whole video, once it is complete.
type Result struct {
	Size   int64
	SHA256 string
	Timing Timing
}

// state is a consistent view of a video's bytes.
type state struct {
	spill    io.ReaderAt
	written  int64
	ends     []int64 // segment ends; the last equals written
	wake     <-chan struct{}
	done     bool
	err      error
	sum      string
	timing   Timing
	progress Progress
}

// source is what a Reader reads: a cache entry or a render in flight.
type source interface {
	snapshot() state
	release() <-chan struct{}
	ended() <-chan struct{}
}

// Reader reads one video from a start offset, in chunks that never cross a
// segment end, so chunks from offset 0 are cut exactly as the render cut
// them. It is not safe for concurrent use.
type Reader struct {
	src    source
	pos    int64
	buf    []byte
	result Result
}

// Next returns the next chunk. When none is ready yet it returns a nil
// error and a channel that is closed when there may be more; after the last
// chunk it returns io.EOF (then Result is valid), or the render's error, or
// ErrOutOfRange.
func (r *Reader) Next() (Chunk, <-chan struct{}, error) {
	st := r.src.snapshot()
	if r.pos >= st.written {
		switch {
		case !st.done:
			return Chunk{}, st.wake, nil
		case st.err != nil:
			return Chunk{}, nil, st.err
		case r.pos > st.written:
			return Chunk{}, nil, ErrOutOfRange
		}
		r.result = Result{Size: st.written, SHA256: st.sum, Timing: st.timing}
		return Chunk{}, nil, io.EOF
	}
	// The first segment end past pos bounds this chunk.
	i := sort.Search(len(st.ends), func(i int) bool { return st.ends[i] > r.pos })
	segEnd := st.ends[i]
	n := min(segEnd-r.pos, MaxChunk)
	if int64(cap(r.buf)) < n {
		r.buf = make([]byte, MaxChunk)
	}
	data := r.buf[:n]
	if err := readFull(st.spill, data, r.pos); err != nil {
		return Chunk{}, nil, err
	}
	c := Chunk{Offset: r.pos, Data: data, SegmentEnd: r.pos+n == segEnd}
	r.pos += n
	return c, nil, nil
}

// Init returns the video's init segment, the first segment, waiting as Next
// does: nil data and a channel while it is not written yet.
func (r *Reader) Init() ([]byte, <-chan struct{}, error) {
	st := r.src.snapshot()
	if len(st.ends) == 0 {
		if st.done {
			return nil, nil, st.err
		}
		return nil, st.wake, nil
	}
	b := make([]byte, st.ends[0])
	if err := readFull(st.spill, b, 0); err != nil {
		return nil, nil, err
	}
	return b, nil, nil
}

// readFull fills p from r at off: bytes the spill already holds, so a short
// read is an error even when it comes with io.EOF.
func readFull(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// Progress reports how far the render behind the reader has come (zero for
// a cached video).
func (r *Reader) Progress() Progress { return r.src.snapshot().progress }

// Offset is the position of the next byte Next returns.
func (r *Reader) Offset() int64 { return r.pos }

// Result describes the whole video; valid after Next returned io.EOF.
func (r *Reader) Result() Result { return r.result }

// Close releases the reader; closing the last reader of an unfinished render
// cancels that render. The channel it returns is closed once nothing the
// reader kept running still runs: at once, unless this was the last reader
// of an unfinished render, then when that render has stopped (its encoders
// exited), so a caller can hand on what the render held only then.
func (r *Reader) Close() <-chan struct{} { return r.src.release() }

// Finished is closed once the video behind the reader is complete or its
// render has failed: at once for a cached video.
func (r *Reader) Finished() <-chan struct{} { return r.src.ended() }

func (e *Entry) snapshot() state {
	return state{spill: e.file, written: e.size, ends: e.segments, done: true, sum: e.sum}
}

func (e *Entry) release() <-chan struct{} {
	_ = e.file.Close()
	return closedChan()
}

func (e *Entry) ended() <-chan struct{} { return closedChan() }
