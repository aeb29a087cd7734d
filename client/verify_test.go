package client_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/whirl-dev/whirl/client"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// events is a RenderStream replaying a fixed list, then end (io.EOF when
// nil).
type events struct {
	evs []*whirlv1.RenderAnimationResponse
	end error
}

func (e *events) Recv() (*whirlv1.RenderAnimationResponse, error) {
	if len(e.evs) == 0 {
		if e.end != nil {
			return nil, e.end
		}
		return nil, io.EOF
	}
	ev := e.evs[0]
	e.evs = e.evs[1:]
	return ev, nil
}

// goodEvents is a valid stream of two chunks: the init segment, then one
// media fragment.
func goodEvents() []*whirlv1.RenderAnimationResponse {
	a, b := []byte("ftyp+moov"), []byte("moof+mdat")
	sum := sha256.Sum256(append(append([]byte{}, a...), b...))
	return []*whirlv1.RenderAnimationResponse{
		{Event: &whirlv1.RenderAnimationResponse_Progress{Progress: &whirlv1.Progress{QueuePosition: 1}}},
		{Event: &whirlv1.RenderAnimationResponse_Header{Header: &whirlv1.RenderHeader{Frames: 3}}},
		{Event: &whirlv1.RenderAnimationResponse_Chunk{Chunk: &whirlv1.MediaChunk{Data: a, SegmentEnd: true}}},
		{Event: &whirlv1.RenderAnimationResponse_Chunk{Chunk: &whirlv1.MediaChunk{Offset: int64(len(a)), Data: b, SegmentEnd: true}}},
		{Event: &whirlv1.RenderAnimationResponse_Trailer{Trailer: &whirlv1.RenderTrailer{
			TotalBytes: int64(len(a) + len(b)), Sha256: hex.EncodeToString(sum[:]), Frames: 3,
		}}},
	}
}

func TestStreamVerifier(t *testing.T) {
	type evs = []*whirlv1.RenderAnimationResponse
	tests := []struct {
		name string
		edit func(evs) evs
		end  error
		want error // nil: valid
	}{
		{"valid", func(e evs) evs { return e }, nil, nil},
		{"no trailer", func(e evs) evs { return e[:4] }, nil, client.ErrTruncated},
		{"second header", func(e evs) evs { return append(e[:2], e[1:]...) }, nil, client.ErrProtocol},
		{"chunk before header", func(e evs) evs { e[1], e[2] = e[2], e[1]; return e }, nil, client.ErrProtocol},
		{"gap", func(e evs) evs { e[3].GetChunk().Offset++; return e }, nil, client.ErrOutOfOrder},
		{"size", func(e evs) evs { e[4].GetTrailer().TotalBytes++; return e }, nil, client.ErrSizeMismatch},
		{"checksum", func(e evs) evs { e[4].GetTrailer().Sha256 = hex.EncodeToString(make([]byte, 32)); return e }, nil, client.ErrChecksumMismatch},
		{"frames", func(e evs) evs { e[4].GetTrailer().Frames = 2; return e }, nil, client.ErrProtocol},
		{"event after trailer", func(e evs) evs { return append(e, e[0]) }, nil, client.ErrProtocol},
		{"status error", func(e evs) evs { return e[:3] }, status.Error(codes.Internal, "ffmpeg died"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			v := client.NewStreamVerifier(&buf)
			observed := 0
			err := v.Receive(&events{evs: tt.edit(goodEvents()), end: tt.end}, func(*whirlv1.RenderAnimationResponse) error { observed++; return nil })
			switch {
			case tt.end != nil:
				if status.Code(err) != codes.Internal {
					t.Fatalf("Receive: %v; want the stream's status as is", err)
				}
			case tt.want != nil:
				if !errors.Is(err, tt.want) {
					t.Fatalf("Receive: %v; want %v", err, tt.want)
				}
				if again := v.Event(goodEvents()[0]); !errors.Is(again, tt.want) {
					t.Errorf("error not sticky: %v", again)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if buf.String() != "ftyp+moovmoof+mdat" || v.Size() != 18 || v.Chunks() != 2 || v.Segments() != 2 || v.Trailer() == nil || observed != 5 {
					t.Errorf("wrote %q, size %d, %d chunks, %d segments, %d observed", buf.String(), v.Size(), v.Chunks(), v.Segments(), observed)
				}
			}
		})
	}
	stop := errors.New("seen enough")
	v := client.NewStreamVerifier(io.Discard)
	if err := v.Receive(&events{evs: goodEvents()}, func(*whirlv1.RenderAnimationResponse) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("observer's error: %v", err)
	}
}

func TestRetryDelay(t *testing.T) {
	if _, ok := client.RetryDelay(errors.New("plain")); ok {
		t.Error("a plain error has no RetryInfo")
	}
	if _, ok := client.RetryDelay(status.Error(codes.ResourceExhausted, "full")); ok {
		t.Error("a status without details has no RetryInfo")
	}
}
