package service

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"

	"github.com/whirl-dev/whirl/internal/curve"
	"github.com/whirl-dev/whirl/internal/encode"
	"github.com/whirl-dev/whirl/internal/render"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// videoIDScheme names the encoding videoID hashes and the way the render
// pipeline turns a request into bytes. Bump it whenever either changes in a
// way the hashed values do not show (runPipeline switching from one encoder
// to segmented encoding, say): cached entries and resumable streams of the
// old pipeline must not answer to the new one's ids.
const videoIDScheme = "whirl-video/1"

// videoID is the lowercase hex SHA-256 naming the bytes vr renders to: over
// a deterministic encoding (JSON of fixed structs: fields in declaration
// order, floats in their shortest exact form) of the curve, the video
// options with every default filled in, and the encoder's identity, which
// is ffmpeg's build description plus every setting encode gives it.
func (s *Animation) videoID(vr videoRequest) (string, error) {
	identity, err := s.encodeOptionsFor(vr).Identity()
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(struct {
		Scheme  string
		Curve   curve.Curve
		Video   render.Options
		FPS     int
		FFmpeg  string
		Encoder string
	}{videoIDScheme, vr.curve, vr.render.WithDefaults(), vr.fps, s.ffmpegVersion, identity})
	if err != nil {
		return "", fmt.Errorf("video id: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// encodeOptionsFor is the server's encoder settings sized for vr.
func (s *Animation) encodeOptionsFor(vr videoRequest) encode.Options {
	o := s.encodeOptions
	o.Width, o.Height, o.FPS, o.Frames = vr.render.Width, vr.render.Height, vr.fps, vr.render.Frames
	return o
}

// videoChanged refuses a resume whose video id is not what the request
// renders now (another ffmpeg build, say): the caller must start over.
func videoChanged(had, now string) error {
	return newStatus(codes.FailedPrecondition, whirlv1.ErrorReason_VIDEO_CHANGED, "the video changed since the stream being resumed; restart from offset 0",
		&errdetails.PreconditionFailure{Violations: []*errdetails.PreconditionFailure_Violation{{
			Type: "VIDEO_CHANGED", Subject: "resume.video_id",
			Description: fmt.Sprintf("resuming %s, but the request now renders %s", had, now),
		}}})
}
