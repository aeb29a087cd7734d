package client

import (
	"errors"
	"fmt"
	"io"

	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// RenderStream is the receiving half of a RenderAnimation call, as the
// generated AnimationServiceClient returns it.
type RenderStream interface {
	Recv() (*whirlv1.RenderAnimationResponse, error)
}

// StreamVerifier checks a RenderAnimation stream against the contract while
// it writes the MP4 to a writer: one header before any chunk, chunks
// contiguous from offset 0 (a Reassembler), a trailer last whose size,
// SHA-256 and frame count match what arrived and what the header promised,
// nothing after it, and no clean end without it. Render uses one; the bench
// and the load command use it too, so there is one definition of a good
// stream. Events this client does not know are skipped.
//
// Errors are sticky, and match ErrProtocol, ErrOutOfOrder, ErrSizeMismatch,
// ErrChecksumMismatch or ErrTruncated.
type StreamVerifier struct {
	asm      *Reassembler
	header   *whirlv1.RenderHeader
	trailer  *whirlv1.RenderTrailer
	chunks   int
	segments int
	err      error
	// resuming: the next header starts a stream that continues this one.
	resuming bool
}

// NewStreamVerifier returns a StreamVerifier writing the video to w.
func NewStreamVerifier(w io.Writer) *StreamVerifier {
	return &StreamVerifier{asm: NewReassembler(w)}
}

// Event checks the next event of the stream and, for a chunk, writes its
// data.
func (v *StreamVerifier) Event(ev *whirlv1.RenderAnimationResponse) error {
	if v.err != nil {
		return v.err
	}
	v.err = v.event(ev)
	return v.err
}

func (v *StreamVerifier) event(ev *whirlv1.RenderAnimationResponse) error {
	if v.trailer != nil {
		return fmt.Errorf("%w: event after the trailer", ErrProtocol)
	}
	switch e := ev.GetEvent().(type) {
	case *whirlv1.RenderAnimationResponse_Header:
		if v.resuming {
			v.resuming = false
			if id := e.Header.GetVideoId(); id != v.header.GetVideoId() {
				return fmt.Errorf("%w: resumed stream carries video %s, not %s", ErrProtocol, id, v.header.GetVideoId())
			}
			return nil
		}
		if v.header != nil {
			return fmt.Errorf("%w: second header", ErrProtocol)
		}
		v.header = e.Header
	case *whirlv1.RenderAnimationResponse_Chunk:
		if v.header == nil {
			return fmt.Errorf("%w: chunk before the header", ErrProtocol)
		}
		if err := v.asm.Write(e.Chunk.GetOffset(), e.Chunk.GetData()); err != nil {
			return err
		}
		v.chunks++
		if e.Chunk.GetSegmentEnd() {
			v.segments++
		}
	case *whirlv1.RenderAnimationResponse_Trailer:
		if v.header == nil {
			return fmt.Errorf("%w: trailer before the header", ErrProtocol)
		}
		if err := v.asm.Verify(e.Trailer.GetTotalBytes(), e.Trailer.GetSha256()); err != nil {
			return err
		}
		if got, want := e.Trailer.GetFrames(), v.header.GetFrames(); got != want {
			return fmt.Errorf("%w: trailer says %d frames, header %d", ErrProtocol, got, want)
		}
		v.trailer = e.Trailer
	}
	return nil
}

// Resume prepares v for a stream that continues this one (a
// RenderAnimationRequest.resume at Size()): its header must name the same
// video_id, its chunks must start at Size(), and its trailer must describe
// the whole file. It needs a header already seen.
func (v *StreamVerifier) Resume() error {
	if v.header == nil {
		return fmt.Errorf("%w: nothing to resume before a header", ErrProtocol)
	}
	v.resuming = true
	return nil
}

// End checks the stream's clean end (io.EOF): without a trailer the video
// is incomplete (ErrTruncated).
func (v *StreamVerifier) End() error {
	if v.err == nil && v.trailer == nil {
		v.err = fmt.Errorf("%w (%d bytes received)", ErrTruncated, v.asm.Size())
	}
	return v.err
}

// Receive reads stream to its end, checking every event, and calls
// observe (if not nil) after each event that passes; an error from observe
// ends the receive and is returned. An error from stream.Recv is returned
// as it is, with its gRPC status; the stream's own faults are the sentinel
// errors above.
func (v *StreamVerifier) Receive(stream RenderStream, observe func(*whirlv1.RenderAnimationResponse) error) error {
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return v.End()
		}
		if err != nil {
			return err
		}
		if err := v.Event(ev); err != nil {
			return err
		}
		if observe != nil {
			if err := observe(ev); err != nil {
				return err
			}
		}
	}
}

// Header is the stream's header, once received.
func (v *StreamVerifier) Header() *whirlv1.RenderHeader { return v.header }

// Trailer is the stream's trailer, once received and verified.
func (v *StreamVerifier) Trailer() *whirlv1.RenderTrailer { return v.trailer }

// Size is the number of video bytes received.
func (v *StreamVerifier) Size() int64 { return v.asm.Size() }

// Sum is the lowercase hex SHA-256 of the video bytes received.
func (v *StreamVerifier) Sum() string { return v.asm.Sum() }

// Chunks is the number of chunks received.
func (v *StreamVerifier) Chunks() int { return v.chunks }

// Segments is the number of chunks that ended a segment: the init segment,
// then one per media fragment.
func (v *StreamVerifier) Segments() int { return v.segments }
