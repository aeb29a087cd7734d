package client

import (
	"context"

	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// GenerateCurve returns the curve a seed and constraints describe, with its
// summary. It needs no lease.
func (c *Client) GenerateCurve(ctx context.Context, req *whirlv1.GenerateCurveRequest) (*whirlv1.Curve, error) {
	cctx, cancel := c.callContext(ctx)
	defer cancel()
	curve, err := c.anim.GenerateCurve(cctx, req)
	if err != nil {
		return nil, rpcError(ctx, "generate curve", err)
	}
	return curve, nil
}

// RenderStill draws one PNG: the finished curve, or one frame of its
// animation. It needs no lease.
func (c *Client) RenderStill(ctx context.Context, req *whirlv1.RenderStillRequest) (*whirlv1.RenderStillResponse, error) {
	cctx, cancel := c.callContext(ctx)
	defer cancel()
	resp, err := c.anim.RenderStill(cctx, req)
	if err != nil {
		return nil, rpcError(ctx, "render still", err)
	}
	return resp, nil
}
