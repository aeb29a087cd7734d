package render

import (
	"image"
	"math"
)

// tileW is the width in pixels of a region tile; tiles are two rows (one
// chroma row) high, so they line up with the 2×2 chroma blocks.
const tileW = 16

// region is a set of tiles (tileW×2 pixels) marking where a frame may differ
// from the image it was copied from, so that only those need copying or
// converting to YUV. Strokes are added segment by segment, so a large wheel
// outline marks a ring of tiles, not its whole bounding box.
type region struct {
	w, h   int
	tw     int    // tiles per row pair
	tiles  []bool // row pair k, tile i at k*tw+i
	k0, k1 int    // row pairs outside [k0, k1) are empty
}

func newRegion(w, h int) *region {
	tw := (w + tileW - 1) / tileW
	return &region{w: w, h: h, tw: tw, tiles: make([]bool, tw*(h/2)), k0: h / 2, k1: 0}
}

// clear empties r.
func (r *region) clear() {
	if r.k0 < r.k1 {
		clear(r.tiles[r.k0*r.tw : r.k1*r.tw])
	}
	r.k0, r.k1 = r.h/2, 0
}

// addRect adds the tiles touching the rectangle [x0, x1]×[y0, y1] (image
// coordinates, any real numbers).
func (r *region) addRect(x0, y0, x1, y1 float64) {
	if !(x0 <= x1 && y0 <= y1) { // also NaN
		return
	}
	t0 := clampInt(int(math.Floor(x0/tileW)), 0, r.tw)
	t1 := clampInt(int(math.Floor(x1/tileW))+1, 0, r.tw)
	k0 := clampInt(int(math.Floor(y0/2)), 0, r.h/2)
	k1 := clampInt(int(math.Floor(y1/2))+1, 0, r.h/2)
	if t0 >= t1 || k0 >= k1 {
		return
	}
	for k := k0; k < k1; k++ {
		row := r.tiles[k*r.tw : (k+1)*r.tw]
		for t := t0; t < t1; t++ {
			row[t] = true
		}
	}
	r.k0, r.k1 = min(r.k0, k0), max(r.k1, k1)
}

// addSegment adds the tiles within m of the segment (x0, y0)–(x1, y1), by
// way of its bounding box.
func (r *region) addSegment(x0, y0, x1, y1, m float64) {
	r.addRect(min(x0, x1)-m, min(y0, y1)-m, max(x0, x1)+m, max(y0, y1)+m)
}

func clampInt(x, lo, hi int) int { return min(hi, max(lo, x)) }

// spans calls f with every run of marked tiles as pixel spans [x0, x1) of row
// pair k (x0 and x1 even when the width is).
func (r *region) spans(f func(k, x0, x1 int)) {
	for k := r.k0; k < r.k1; k++ {
		row := r.tiles[k*r.tw : (k+1)*r.tw]
		for t := 0; t < len(row); {
			if !row[t] {
				t++
				continue
			}
			e := t + 1
			for e < len(row) && row[e] {
				e++
			}
			f(k, t*tileW, min(r.w, e*tileW))
			t = e
		}
	}
}

// convert writes r's part of img into the I420 frame dst.
func (r *region) convert(dst []byte, img *image.RGBA) {
	r.spans(func(k, x0, x1 int) { convertSpan(dst, img, k, x0, x1) })
}

// copyPix copies r's part of src into dst (same size).
func (r *region) copyPix(dst, src *image.RGBA) {
	r.spans(func(k, x0, x1 int) {
		for y := 2 * k; y < 2*k+2; y++ {
			so := src.PixOffset(src.Rect.Min.X+x0, src.Rect.Min.Y+y)
			do := dst.PixOffset(dst.Rect.Min.X+x0, dst.Rect.Min.Y+y)
			copy(dst.Pix[do:do+4*(x1-x0)], src.Pix[so:so+4*(x1-x0)])
		}
	})
}
