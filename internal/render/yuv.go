package render

import (
	"encoding/binary"
	"fmt"
	"image"

	"github.com/whirl-dev/whirl/internal/i420"
)

// ToYUV420 converts img to planar I420 in dst: the Y plane (w·h bytes), then
// U (Cb) and V (Cr), (w/2)·(h/2) bytes each. It uses BT.601 limited range in
// 16-bit fixed point (Y 16-235, Cb/Cr 16-240; within ±1 of the exact float
// conversion, exact for greys), chroma from the average of each 2×2 block;
// alpha is ignored. img's width and height must be even and dst at least
// i420.Size long, or it panics.
func ToYUV420(dst []byte, img *image.RGBA) {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	checkYUV(dst, w, h)
	for k := range h / 2 {
		convertSpan(dst, img, k, 0, w)
	}
}

func checkYUV(dst []byte, w, h int) {
	if w%2 != 0 || h%2 != 0 {
		panic(fmt.Sprintf("render.ToYUV420: %dx%d image, want even sizes", w, h))
	}
	if len(dst) < i420.Size(w, h) {
		panic(fmt.Sprintf("render.ToYUV420: dst has %d bytes, want %d", len(dst), i420.Size(w, h)))
	}
}

// convertSpan converts pixels [x0, x1) (both even) of rows 2k and 2k+1 of img
// into their places in the I420 frame dst.
func convertSpan(dst []byte, img *image.RGBA, k, x0, x1 int) {
	if x0 >= x1 {
		return
	}
	w, h := img.Rect.Dx(), img.Rect.Dy()
	cw, ch := w/2, h/2
	o := img.PixOffset(img.Rect.Min.X+x0, img.Rect.Min.Y+2*k)
	n := (x1 - x0) / 2
	r0 := img.Pix[o : o+8*n]
	r1 := img.Pix[o+img.Stride : o+img.Stride+8*n]
	yo := 2*k*w + x0
	y0 := dst[yo : yo+2*n]
	y1 := dst[yo+w : yo+w+2*n]
	co := k*cw + x0/2
	u := dst[w*h+co : w*h+co+n]
	v := dst[w*h+cw*ch+co : w*h+cw*ch+co+n]
	convertRows(r0, r1, y0, y1, u, v)
}

// BT.601 limited-range coefficients in 16-bit fixed point: Y = 16 +
// 219/255·(0.299R + 0.587G + 0.114B), Cb = 128 + 224/255·(B − Y')/1.772,
// Cr = 128 + 224/255·(R − Y')/1.402. Chroma works on sums of four pixels,
// hence the extra 2 bits of shift. The chroma coefficients sum to 0, so
// greys get exactly 128.
const (
	yR, yG, yB = 16829, 33039, 6416
	yOff       = 16<<16 + 1<<15 // +16, rounded
	uR, uG, uB = -9714, -19070, 28784
	vR, vG, vB = 28784, -24103, -4681
	cOff       = 128<<18 + 1<<17 // +128, rounded
)

// convertRows converts two rows of RGBA pixels (8·len(u) bytes each) into two
// rows of luma (2·len(u) bytes each) and one row each of Cb and Cr.
//
// Luma is computed two pixels at a time in the two 32-bit halves of a uint64
// (no lane can carry into the other: 56284·255 + yOff < 2³²). A 2×2 block
// equal to the one before it (most of a frame is background) reuses its
// results. (Filling whole runs of equal blocks at once, and separate luma and
// chroma passes, both measured slower.)
func convertRows(r0, r1, y0, y1, u, v []byte) {
	const lo = 0x000000ff_000000ff
	const yOff2 = yOff | yOff<<32
	n := len(u)
	r0 = r0[:8*n]
	r1 = r1[:8*n]
	y0 = y0[:2*n]
	y1 = y1[:2*n]
	v = v[:n]
	var pa, pb uint64 // the previous block
	var ya16, yb16 uint16
	var cu, cv uint8
	for i := range n {
		a := binary.LittleEndian.Uint64(r0[8*i : 8*i+8])
		b := binary.LittleEndian.Uint64(r1[8*i : 8*i+8])
		if i == 0 || a != pa || b != pb {
			pa, pb = a, b
			ar, ag, ab := a&lo, a>>8&lo, a>>16&lo
			br, bg, bb := b&lo, b>>8&lo, b>>16&lo
			ya := (yR*ar + yG*ag + yB*ab + yOff2) >> 16 & lo
			yb := (yR*br + yG*bg + yB*bb + yOff2) >> 16 & lo
			ya16, yb16 = uint16(ya|ya>>24), uint16(yb|yb>>24)
			sr, sg, sb := ar+br, ag+bg, ab+bb
			r := int32(sr + sr>>32)
			g := int32(sg + sg>>32)
			bl := int32(sb + sb>>32)
			cu = uint8((uR*r + uG*g + uB*bl + cOff) >> 18)
			cv = uint8((vR*r + vG*g + vB*bl + cOff) >> 18)
		}
		binary.LittleEndian.PutUint16(y0[2*i:2*i+2], ya16)
		binary.LittleEndian.PutUint16(y1[2*i:2*i+2], yb16)
		u[i] = cu
		v[i] = cv
	}
}
