package client_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/whirl-dev/whirl/client"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// Dial a server and describe the curve of a seed. The same request always
// gives the same curve.
func ExampleDial() {
	ctx := context.Background()
	c, err := client.Dial(ctx, exampleAddr, client.WithTimeout(10*time.Second))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	curve, err := c.GenerateCurve(ctx, &whirlv1.GenerateCurveRequest{Seed: 42, Wheels: 3, KFold: 5})
	if err != nil {
		fmt.Println(err)
		return
	}
	s := curve.GetSummary()
	fmt.Printf("%d wheels, %d-fold symmetry\n", s.GetWheels(), s.GetSymmetry())
	// Output: 3 wheels, 5-fold symmetry
}

// A server that does not answer fails Dial at once, with the cause.
func ExampleDial_unreachable() {
	_, err := client.Dial(context.Background(), "127.0.0.1:1")
	fmt.Println(errors.Is(err, client.ErrUnreachable), status.Code(err))
	// Output: true Unavailable
}

// Render acquires a lease, streams the MP4, checks it against the trailer and
// releases the lease.
func ExampleClient_Render() {
	ctx := context.Background()
	c, err := client.Dial(ctx, exampleAddr)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	req := &whirlv1.RenderAnimationRequest{
		Source: &whirlv1.RenderAnimationRequest_Generate{Generate: &whirlv1.GenerateCurveRequest{Seed: 42}},
		Video:  &whirlv1.VideoOptions{Width: 160, Height: 120, Fps: 30, Frames: 30, Style: whirlv1.Style_STYLE_TRACE},
	}
	var video bytes.Buffer
	var last client.Progress
	res, err := c.Render(ctx, req, &video, client.WithProgress(func(p client.Progress) { last = p }))
	if err != nil {
		fmt.Println(err)
		return
	}
	sum := sha256.Sum256(video.Bytes())
	fmt.Println("frames:", res.Header.GetFrames())
	fmt.Println("bytes match trailer:", int64(video.Len()) == res.Trailer.GetTotalBytes())
	fmt.Println("sha256 matches trailer:", hex.EncodeToString(sum[:]) == res.Trailer.GetSha256())
	fmt.Printf("last progress: %s %d/%d\n", last.Phase, last.FramesDone, last.FramesTotal)
	fmt.Println("lease released:", res.Released)
	// Output:
	// frames: 30
	// bytes match trailer: true
	// sha256 matches trailer: true
	// last progress: done 30/30
	// lease released: true
}

// Leases can also be handled by hand: acquire one, use it for several
// renders (WithLease), renew it, release it.
func ExampleClient_Acquire() {
	ctx := context.Background()
	c, err := client.Dial(ctx, exampleAddr, client.WithHolder("example"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	l, err := c.Acquire(ctx, client.AcquireOptions{Policy: client.AcquireRetry})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("holder:", l.Holder, "ttl:", l.TTL)
	if _, err := c.Renew(ctx, l.ID); err != nil {
		fmt.Println(err)
		return
	}
	if err := c.Release(ctx, l.ID); err != nil {
		fmt.Println(err)
		return
	}
	// A released lease is gone; the status code says so.
	_, err = c.Renew(ctx, l.ID)
	fmt.Println(status.Code(err) == codes.NotFound)
	// Output:
	// holder: example ttl: 5m0s
	// true
}

// Operators list and revoke leases with the admin token.
func ExampleClient_ListLeases() {
	ctx := context.Background()
	c, err := client.Dial(ctx, exampleAddr, client.WithToken(exampleToken), client.WithHolder("example-admin"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	l, err := c.Acquire(ctx, client.AcquireOptions{Policy: client.AcquireRetry})
	if err != nil {
		fmt.Println(err)
		return
	}
	pool, err := c.ListLeases(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, info := range pool.Leases {
		if info.Handle == l.Handle {
			fmt.Println("listed:", info.Holder, "rendering:", info.Rendering)
		}
	}
	if err := c.RevokeLease(ctx, l.Handle); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("revoked; release now fails with", status.Code(c.Release(ctx, l.ID)))
	// Output:
	// listed: example-admin rendering: false
	// revoked; release now fails with NotFound
}
