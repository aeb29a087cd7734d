package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/whirl-dev/whirl/client"
)

type leaseJSON struct {
	LeaseID       string    `json:"leaseId"`
	Handle        string    `json:"handle"`
	Holder        string    `json:"holder"`
	ExpireTime    time.Time `json:"expireTime"`
	MaxExpireTime time.Time `json:"maxExpireTime"`
	TTL           string    `json:"ttl"`
}

func leaseView(l *client.Lease) leaseJSON {
	return leaseJSON{l.ID, l.Handle, l.Holder, l.ExpireTime, l.MaxExpireTime, protoDuration(l.TTL)}
}

// protoDuration formats d as protobuf's JSON mapping does: "300s", "1.5s".
func protoDuration(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
}

func protoJSON(m proto.Message) json.RawMessage {
	b, err := protojson.Marshal(m)
	if err != nil {
		return json.RawMessage("null")
	}
	return b
}

func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// output is where a command writes its image or video: stdout for "-", or
// a temporary file beside the target that is renamed into place only when
// the result is complete, so a failed render never leaves a truncated file.
type output struct {
	path string
	f    *os.File
	w    io.Writer
}

func (a *app) createOutput(path string) (*output, error) {
	if path == "-" {
		return &output{path: path, w: a.stdout}, nil
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.partial")
	if err != nil {
		return nil, err
	}
	return &output{path: path, f: f, w: f}, nil
}

func (o *output) commit() error {
	if o.f == nil {
		return nil
	}
	err := o.f.Chmod(0o644)
	if cerr := o.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(o.f.Name(), o.path)
	}
	if err != nil {
		_ = os.Remove(o.f.Name())
	}
	return err
}

func (o *output) abort() {
	if o.f != nil {
		_ = o.f.Close()
		_ = os.Remove(o.f.Name())
	}
}
