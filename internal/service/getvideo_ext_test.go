package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/whirl-dev/whirl/internal/cache"
	"github.com/whirl-dev/whirl/internal/service"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// renderedVideo renders req once on env (whose cache is on) and returns
// what the stream carried.
func renderedVideo(t *testing.T, env renderEnv, req *whirlv1.RenderAnimationRequest) result {
	t.Helper()
	req = proto.Clone(req).(*whirlv1.RenderAnimationRequest)
	req.LeaseId = env.acquire(t)
	stream, err := env.api.RenderAnimation(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	r := collect(t, stream, nil)
	if r.err != nil || r.trailer == nil {
		t.Fatalf("render: %v (trailer %v)", r.err, r.trailer)
	}
	return r
}

// getRange reads a GetVideo stream, checking that chunks run contiguously
// from offset, and returns their bytes, header and trailer.
func getRange(t *testing.T, api whirlv1.AnimationServiceClient, req *whirlv1.GetVideoRequest) ([]byte, *whirlv1.RenderHeader, *whirlv1.RenderTrailer, error) {
	t.Helper()
	stream, err := api.GetVideo(context.Background(), req)
	if err != nil {
		return nil, nil, nil, err
	}
	var got []byte
	var header *whirlv1.RenderHeader
	var trailer *whirlv1.RenderTrailer
	for {
		ev, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return got, header, trailer, nil
			}
			return got, header, trailer, err
		}
		if trailer != nil {
			t.Error("event after the trailer")
		}
		switch {
		case ev.GetHeader() != nil:
			header = ev.GetHeader()
		case ev.GetChunk() != nil:
			c := ev.GetChunk()
			if header == nil {
				t.Error("chunk before the header")
			}
			if want := req.GetOffset() + int64(len(got)); c.GetOffset() != want {
				t.Errorf("chunk at %d, want %d", c.GetOffset(), want)
			}
			got = append(got, c.GetData()...)
		case ev.GetTrailer() != nil:
			trailer = ev.GetTrailer()
		}
	}
}

func TestGetVideoServesFinishedVideo(t *testing.T) {
	env := startRenderer(t, service.Config{Cache: cache.Open(t.TempDir(), 1<<30, nil, nil)})
	want := renderedVideo(t, env, smallVideo(7, 30))
	id, size := want.header.GetVideoId(), int64(len(want.video))
	started := len(env.pids.all())

	for _, tc := range []struct {
		name          string
		offset, limit int64
	}{
		{"whole", 0, 0},
		{"first bytes", 0, 100},
		{"middle across chunks", 1000, 70000},
		{"tail", size - 10, 0},
		{"limit past the end", size - 10, 1 << 20},
		{"at the end", size, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, h, tr, err := getRange(t, env.api, &whirlv1.GetVideoRequest{VideoId: id, Offset: tc.offset, Limit: tc.limit})
			if err != nil {
				t.Fatal(err)
			}
			end := size
			if tc.limit > 0 {
				end = min(size, tc.offset+tc.limit)
			}
			if !bytes.Equal(got, want.video[tc.offset:end]) {
				t.Errorf("got %d bytes, want bytes %d-%d of %d", len(got), tc.offset, end, size)
			}
			if !proto.Equal(h, want.header) {
				t.Errorf("header %v, want the render's %v", h, want.header)
			}
			if tr.GetSource() != whirlv1.VideoSource_VIDEO_SOURCE_CACHED || tr.GetTotalBytes() != size ||
				tr.GetSha256() != want.trailer.GetSha256() || tr.GetVideoId() != id || tr.GetFrames() != 30 {
				t.Errorf("trailer %v, want CACHED, %d bytes, %s", tr, size, want.trailer.GetSha256())
			}
		})
	}
	if n := len(env.pids.all()); n != started {
		t.Errorf("GetVideo started %d encoders", n-started)
	}
}

func TestGetVideoRefusals(t *testing.T) {
	env := startRenderer(t, service.Config{Cache: cache.Open(t.TempDir(), 1<<30, nil, nil)})
	id := renderedVideo(t, env, smallVideo(8, 15)).header.GetVideoId()
	for _, tc := range []struct {
		name  string
		req   *whirlv1.GetVideoRequest
		code  codes.Code
		field string
	}{
		{"empty id", &whirlv1.GetVideoRequest{}, codes.InvalidArgument, "video_id"},
		{"upper case id", &whirlv1.GetVideoRequest{VideoId: strings.ToUpper(id)}, codes.InvalidArgument, "video_id"},
		{"path in id", &whirlv1.GetVideoRequest{VideoId: "../" + id[3:]}, codes.InvalidArgument, "video_id"},
		{"negative offset", &whirlv1.GetVideoRequest{VideoId: id, Offset: -1}, codes.InvalidArgument, "offset"},
		{"negative limit", &whirlv1.GetVideoRequest{VideoId: id, Limit: -1}, codes.InvalidArgument, "limit"},
		{"unknown", &whirlv1.GetVideoRequest{VideoId: strings.Repeat("0", 64)}, codes.NotFound, ""},
		{"past the end", &whirlv1.GetVideoRequest{VideoId: id, Offset: 1 << 40}, codes.OutOfRange, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, h, _, err := getRange(t, env.api, tc.req)
			if status.Code(err) != tc.code {
				t.Fatalf("got %v, want %v", err, tc.code)
			}
			if h != nil {
				t.Error("a refused call sent a header")
			}
			if tc.field == "" {
				return
			}
			var fields []string
			for _, d := range status.Convert(err).Details() {
				if br, ok := d.(*errdetails.BadRequest); ok {
					for _, v := range br.GetFieldViolations() {
						fields = append(fields, v.GetField())
					}
				}
			}
			if len(fields) != 1 || fields[0] != tc.field {
				t.Errorf("BadRequest fields %v, want [%s]", fields, tc.field)
			}
		})
	}
}

// A video cached before its facts were recorded (or whose facts are lost)
// is still served; the header says only what the bytes say.
func TestGetVideoWithoutFacts(t *testing.T) {
	dir := t.TempDir()
	env := startRenderer(t, service.Config{Cache: cache.Open(dir, 1<<30, nil, nil)})
	want := renderedVideo(t, env, smallVideo(9, 15))
	id := want.header.GetVideoId()
	path := filepath.Join(dir, id+".json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["info"]; !ok {
		t.Fatalf("the entry's metadata records no facts: %s", b)
	}
	delete(m, "info")
	b, _ = json.Marshal(m)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	other := startRenderer(t, service.Config{Cache: cache.Open(dir, 1<<30, nil, nil)})
	got, h, tr, err := getRange(t, other.api, &whirlv1.GetVideoRequest{VideoId: id})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.video) {
		t.Error("bytes differ from the render's")
	}
	if h.GetCurve() != nil || h.GetWidth() != 0 || h.GetFrames() != 0 || h.GetStyle() != whirlv1.Style_STYLE_UNSPECIFIED ||
		h.GetMimeType() != want.header.GetMimeType() || h.GetVideoId() != id {
		t.Errorf("header %v: want only the MIME type and the id", h)
	}
	if tr.GetFrames() != 0 || tr.GetSha256() != want.trailer.GetSha256() {
		t.Errorf("trailer %v", tr)
	}
}

func TestGetVideoRateLimit(t *testing.T) {
	env := startRenderer(t, service.Config{
		Cache:       cache.Open(t.TempDir(), 1<<30, nil, nil),
		VideoLimits: service.ClientLimits{Rate: 0.001, Burst: 2},
	})
	id := renderedVideo(t, env, smallVideo(10, 15)).header.GetVideoId()
	for i := range 2 {
		if _, _, _, err := getRange(t, env.api, &whirlv1.GetVideoRequest{VideoId: id}); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	_, _, _, err := getRange(t, env.api, &whirlv1.GetVideoRequest{VideoId: id})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("third call: %v, want RESOURCE_EXHAUSTED", err)
	}
	var quota string
	for _, d := range status.Convert(err).Details() {
		if q, ok := d.(*errdetails.QuotaFailure); ok {
			quota = q.GetViolations()[0].GetSubject()
		}
	}
	if quota != "video_rate" {
		t.Errorf("QuotaFailure subject %q, want video_rate", quota)
	}
}
