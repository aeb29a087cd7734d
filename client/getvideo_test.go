package client_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/whirl-dev/whirl/client"
	"github.com/whirl-dev/whirl/internal/cache"
	"github.com/whirl-dev/whirl/internal/service"
)

func TestGetVideo(t *testing.T) {
	srv := startServer(t, service.Config{Cache: cache.Open(t.TempDir(), 1<<30, nil, nil)})
	c := dial(t, srv.Addr)
	var rendered bytes.Buffer
	res, err := c.Render(t.Context(), smallVideo(5, 20), &rendered)
	if err != nil {
		t.Fatal(err)
	}
	id := res.Trailer.GetVideoId()

	var got bytes.Buffer
	v, err := c.GetVideo(t.Context(), id, &got)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), rendered.Bytes()) || v.SHA256 != res.SHA256 || v.Bytes != res.Bytes ||
		v.Header.GetFrames() != 20 || v.Header.GetVideoId() != id || v.Trailer.GetSource().String() != "VIDEO_SOURCE_CACHED" {
		t.Errorf("GetVideo: %+v", v)
	}
	if n := liveLeases(t, c); n != 0 {
		t.Errorf("%d leases live: GetVideo needs none", n)
	}

	for _, tc := range []struct {
		id   string
		code codes.Code
	}{
		{strings.Repeat("1", 64), codes.NotFound},
		{"nope", codes.InvalidArgument},
	} {
		_, err := c.GetVideo(t.Context(), tc.id, &bytes.Buffer{})
		var rpcErr *client.RPCError
		if !errors.As(err, &rpcErr) || rpcErr.Status.Code() != tc.code {
			t.Errorf("GetVideo(%q): %v, want %v", tc.id, err, tc.code)
		}
	}
}
