package service

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/whirl-dev/whirl/internal/cache"
	"github.com/whirl-dev/whirl/internal/curve"
	"github.com/whirl-dev/whirl/internal/fmp4"
	"github.com/whirl-dev/whirl/internal/render"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// videoInfo is what the cache keeps about a video beside its bytes, so
// that serving it by id alone can still describe it in the header.
type videoInfo struct {
	Curve  curve.Curve  `json:"curve"`
	Width  int          `json:"width"`
	Height int          `json:"height"`
	FPS    int          `json:"fps"`
	Frames int          `json:"frames"`
	Style  render.Style `json:"style"`
}

// describe records vr's facts with the video id's cache entry.
func (s *Animation) describe(id string, vr videoRequest) {
	o := vr.render.WithDefaults()
	b, err := json.Marshal(videoInfo{Curve: vr.curve, Width: o.Width, Height: o.Height, FPS: vr.fps, Frames: o.Frames, Style: o.Style})
	if err == nil {
		s.store.Describe(id, b)
	}
}

// recordedFacts is what the server recorded about a finished video: the
// curve, with its summary, and the video's size, rate, length and style.
// The zero value (nil Curve) means nothing is known.
type recordedFacts struct {
	Curve                      *whirlv1.Curve
	Width, Height, FPS, Frames int32
	Style                      whirlv1.Style
}

// videoFacts decodes what describe stored; unknown or unreadable facts are
// the zero value.
func videoFacts(info json.RawMessage) recordedFacts {
	var vi videoInfo
	if len(info) == 0 || json.Unmarshal(info, &vi) != nil || len(vi.Curve.Wheels) == 0 {
		return recordedFacts{}
	}
	return recordedFacts{
		Curve: curveProto(vi.Curve), Width: int32(vi.Width), Height: int32(vi.Height),
		FPS: int32(vi.FPS), Frames: int32(vi.Frames), Style: styleProto(vi.Style),
	}
}

// FinishedVideo looks up a finished video in the server's cache tiers, for
// front ends that serve it as a file (HTTP); ok is false when no tier holds
// it. facts returns a RenderHeader with what the server recorded about it
// (curve and video facts, unset when unknown) and its id; no MIME type.
// It decodes them on each call, which costs more than sending a range of
// the video: call it only to describe the video.
func (s *Server) FinishedVideo(id string) (f cache.File, facts func() *whirlv1.RenderHeader, ok bool) {
	f, ok = s.animation.store.File(id)
	if !ok {
		return f, nil, false
	}
	return f, func() *whirlv1.RenderHeader {
		vf := videoFacts(f.Info)
		return &whirlv1.RenderHeader{
			Curve: vf.Curve, Width: vf.Width, Height: vf.Height, Fps: vf.FPS, Frames: vf.Frames, Style: vf.Style, VideoId: id,
		}
	}, true
}

// GetVideo streams a finished video by id from the cache's tiers: no
// lease, no render slot, no render.
func (s *Animation) GetVideo(req *whirlv1.GetVideoRequest, out whirlv1.AnimationService_GetVideoServer) error {
	ctx := out.Context()
	id, offset, limit := req.GetVideoId(), req.GetOffset(), req.GetLimit()
	var v violations
	if !cache.ValidID(id) {
		v.add("video_id", "must be the 64 lowercase hex digits of a RenderHeader.video_id")
	}
	if offset < 0 {
		v.add("offset", fmt.Sprintf("must not be negative, got %d", offset))
	}
	if limit < 0 {
		v.add("limit", fmt.Sprintf("must not be negative, got %d", limit))
	}
	if err := v.err(); err != nil {
		return err
	}
	logVideoID(ctx, id)
	video, ok := s.store.Video(id, offset)
	if !ok {
		return newStatus(codes.NotFound, whirlv1.ErrorReason_VIDEO_NOT_FOUND, fmt.Sprintf("video %s is not held by this server's cache: render it with RenderAnimation", id))
	}
	defer video.Close()
	if offset > video.Size {
		return newStatus(codes.OutOfRange, whirlv1.ErrorReason_RESUME_OUT_OF_RANGE, fmt.Sprintf("offset %d is past the end of the video (%d bytes)", offset, video.Size))
	}
	end := video.Size
	if limit > 0 && limit < end-offset {
		end = offset + limit
	}
	return s.sendVideo(ctx, id, video, end, out)
}

// sendVideo streams video's bytes up to end as a cached RenderAnimation
// stream does: header, chunks, progress, trailer.
func (s *Animation) sendVideo(ctx context.Context, id string, video cache.Video, end int64, out whirlv1.AnimationService_GetVideoServer) error {
	start := time.Now()
	facts := videoFacts(video.Info)
	init, _, err := video.Init()
	if err != nil {
		s.logger.ErrorContext(ctx, "reading a cached video failed", "err", err)
		return internalError("reading the cached video failed")
	}
	mime, err := fmp4.MIMEType(init)
	if err != nil {
		return internalError(fmt.Sprintf("cached video has an unreadable init segment: %v", err))
	}
	if err := out.Send(&whirlv1.RenderAnimationResponse{Event: &whirlv1.RenderAnimationResponse_Header{Header: &whirlv1.RenderHeader{
		Curve: facts.Curve, Width: facts.Width, Height: facts.Height, Fps: facts.FPS, Frames: facts.Frames,
		Style: facts.Style, MimeType: mime, VideoId: id,
	}}}); err != nil {
		return err
	}
	for video.Offset() < end {
		chunk, _, err := video.Next()
		if err != nil {
			s.logger.ErrorContext(ctx, "reading a cached video failed", "err", err)
			return internalError("reading the cached video failed; the video is incomplete")
		}
		data, segEnd := chunk.Data, chunk.SegmentEnd
		if over := chunk.Offset + int64(len(data)) - end; over > 0 {
			data, segEnd = data[:int64(len(data))-over], false
		}
		if err := out.Send(&whirlv1.RenderAnimationResponse{Event: &whirlv1.RenderAnimationResponse_Chunk{Chunk: &whirlv1.MediaChunk{
			Offset: chunk.Offset, Data: data, SegmentEnd: segEnd,
		}}}); err != nil {
			return err
		}
	}
	if err := out.Send(progressEvent(&whirlv1.Progress{FramesDone: facts.Frames, FramesTotal: facts.Frames, BytesSent: end})); err != nil {
		return err
	}
	return out.Send(&whirlv1.RenderAnimationResponse{Event: &whirlv1.RenderAnimationResponse_Trailer{Trailer: &whirlv1.RenderTrailer{
		TotalBytes: video.Size, Sha256: video.SHA256, RenderTime: durationpb.New(0), EncodeTime: durationpb.New(0),
		Frames: facts.Frames, Elapsed: durationpb.New(time.Since(start)), VideoId: id,
		Source: whirlv1.VideoSource_VIDEO_SOURCE_CACHED,
	}}})
}

// ClientHeader is the request header that names a client for the
// per-client limits (Config.ClientHeader), empty when clients are their
// addresses.
func (s *Server) ClientHeader() string { return s.clientHeader }

// AdmitVideoRead applies GetVideo's per-client limits to a read of a
// finished video through another front end (HTTP), so that a client has
// one budget whichever way it asks. ip is the client's address without
// the port; header the value of ClientHeader's header ("" if absent or
// not configured). Admitted, the caller must call done when the read
// ends; refused, retry says when the client may come back (zero when it
// is at its in-flight cap).
func (s *Server) AdmitVideoRead(ip, header string) (done func(), retry time.Duration, ok bool) {
	c := s.limits.forMethod(whirlv1.AnimationService_GetVideo_FullMethodName)
	if c == nil {
		return func() {}, 0, true
	}
	key := ip
	if s.clientHeader != "" {
		key = headerValueKey(header, ip)
	}
	now := time.Now()
	st, wait, full := c.take(key, now)
	if full || wait > 0 {
		return nil, wait, false
	}
	return func() { c.done(key, st, time.Since(now)) }, 0, true
}
