package client

import (
	"context"
	"fmt"
	"io"

	"google.golang.org/grpc/status"

	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// VideoResult is what GetVideo fetched.
type VideoResult struct {
	// Header describes the video. Its curve and video facts are unset
	// when the server no longer knows them; MIME type and id are always
	// there.
	Header *whirlv1.RenderHeader
	// Trailer closes the stream: total bytes and SHA-256 (source CACHED).
	Trailer *whirlv1.RenderTrailer
	// Bytes is the number of bytes written to the writer.
	Bytes int64
	// SHA256 is the lowercase hex SHA-256 of the bytes written, equal to
	// the trailer's.
	SHA256 string
}

// GetVideo writes the finished video videoID (a RenderHeader.video_id) to
// w and verifies it as Render does: contiguous chunks, a trailer whose
// size and SHA-256 match the bytes written. It needs no lease. A video no
// tier of the server holds fails with NOT_FOUND (render it again); a
// malformed id with INVALID_ARGUMENT. On any error, what was written to w
// is incomplete and must be discarded.
func (c *Client) GetVideo(ctx context.Context, videoID string, w io.Writer) (*VideoResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.anim.GetVideo(ctx, &whirlv1.GetVideoRequest{VideoId: videoID})
	if err != nil {
		return nil, rpcError(ctx, "get video", err)
	}
	v := NewStreamVerifier(w)
	if err := v.Receive(stream, nil); err != nil {
		if _, isStatus := status.FromError(err); isStatus {
			return nil, rpcError(ctx, "get video", err)
		}
		return nil, fmt.Errorf("whirl: get video: %w", err)
	}
	if id := v.Header().GetVideoId(); id != videoID {
		return nil, fmt.Errorf("whirl: get video: %w: the server sent video %s, not %s", ErrProtocol, id, videoID)
	}
	return &VideoResult{Header: v.Header(), Trailer: v.Trailer(), Bytes: v.Size(), SHA256: v.Sum()}, nil
}
