// Package i420 describes planar YUV 4:2:0 frames (ffmpeg's yuv420p), the
// layout the renderer writes and the encoder reads: a full-size Y plane,
// then the U and V planes at half width and half height.
package i420

// Size is the length in bytes of one w×h frame; w and h must be even.
func Size(w, h int) int { return w*h + 2*(w/2)*(h/2) }
