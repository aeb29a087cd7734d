package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"

	"github.com/whirl-dev/whirl/client"
)

func defineGet(fs *flag.FlagSet) runner {
	out := fs.String("o", "", "output `file` (- for stdout); required")
	return func(a *app, ctx context.Context, args []string) error { return a.get(ctx, args[0], *out) }
}

// get fetches a finished video by id; the file is written only once its
// bytes match the SHA-256 the server's trailer gives.
func (a *app) get(ctx context.Context, id, out string) error {
	if err := a.checkOutput("get", "video", out); err != nil {
		return err
	}
	c, err := a.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	o, err := a.createOutput(out)
	if err != nil {
		return err
	}
	res, err := c.GetVideo(ctx, id, o.w)
	if err != nil {
		o.abort()
		return err
	}
	if err := o.commit(); err != nil {
		return err
	}
	if a.g.json {
		return a.printJSON(getJSON(out, res))
	}
	summary := a.stdout
	if out == "-" {
		if !a.tty {
			return nil
		}
		summary = a.stderr
	}
	h := res.Header
	facts := "curve not known to the server"
	if h.GetCurve() != nil {
		facts = fmt.Sprintf("%d frames %d×%d @%d fps", h.GetFrames(), h.GetWidth(), h.GetHeight(), h.GetFps())
	}
	fmt.Fprintf(summary, "wrote %s: %s, %s, sha256 %s verified\n", out, facts, humanBytes(res.Bytes), res.SHA256[:12])
	return nil
}

// getJSON is get's --json result.
func getJSON(out string, res *client.VideoResult) any {
	return struct {
		Output   string          `json:"output"`
		Bytes    int64           `json:"bytes"`
		SHA256   string          `json:"sha256"`
		VideoID  string          `json:"videoId"`
		MIMEType string          `json:"mimeType"`
		Frames   int32           `json:"frames"`
		Width    int32           `json:"width"`
		Height   int32           `json:"height"`
		FPS      int32           `json:"fps"`
		Curve    json.RawMessage `json:"curve"`
	}{
		Output: out, Bytes: res.Bytes, SHA256: res.SHA256, VideoID: res.Header.GetVideoId(), MIMEType: res.Header.GetMimeType(),
		Frames: res.Header.GetFrames(), Width: res.Header.GetWidth(), Height: res.Header.GetHeight(), FPS: res.Header.GetFps(),
		Curve: protoJSON(res.Header.GetCurve()),
	}
}
