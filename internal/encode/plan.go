package encode

import (
	"fmt"
	"strings"
)

// Span is a planned run of a video's frames, [First, First+Count), encoded
// by one ffmpeg from its own closed GOP.
type Span struct {
	First, Count int
}

// MinTail is the fewest frames a span has, unless the whole video is
// shorter: libx264 delays presentation by its B-frame reordering (2 frames
// with the presets' B-pyramid) only once it has 3 frames or more; a 1- or
// 2-frame span would be presented 2 frames early against the others.
// 8 leaves margin. It matters only for GOPs under 2×MinTail frames.
const MinTail = 8

// Plan cuts a video of frames frames into the spans a planned encode
// (EncodeSpans) runs, each encoded by its own ffmpeg from its own closed GOP: as few
// spans as hold at most one GOP each (o.GOP frames, after defaults), of
// equal length (the first ones a frame longer when frames does not divide
// evenly), none shorter than MinTail unless the video is (then a span
// may hold more than a GOP, with a keyframe inside). The plan depends on the
// request alone (frames and the options' GOP, itself DefaultGOPSeconds×FPS
// unless set), never on how many encoders happen to run, so the bytes do
// not either. A video of 0 frames has no spans.
//
// Equal lengths because spans run side by side and, given an encoder
// each, the longest sets the render's time: 200 frames are 100+100, not
// 150+50. Why the GOP is 5 s: see DefaultGOPSeconds and docs/PERFORMANCE.md
// ("GOP and segments").
func (o Options) Plan(frames int) ([]Span, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	if frames < 0 {
		return nil, fmt.Errorf("encode: plan for %d frames", frames)
	}
	n := min((frames+o.GOP-1)/o.GOP, max(frames/MinTail, 1))
	spans := make([]Span, 0, n)
	for i, first := 0, 0; i < n; i++ {
		count := frames / n
		if i < frames%n {
			count++
		}
		spans = append(spans, Span{First: first, Count: count})
		first += count
	}
	return spans, nil
}

// planVersion names the way Plan cuts a video and fmp4.Stitcher joins
// the spans; it changes whenever either would change the bytes. It is part
// of every video id: the word "segments" in it predates "span" and stays.
const planVersion = "equal-segments/2"

// SpanThreads is libx264's thread count in each span's ffmpeg when
// Options.Threads is 0: one, because a video's spans run side by side
// and one thread per encoder wastes no CPU on x264's frame threading, and
// keeps the first fragment fast (docs/PERFORMANCE.md, "Threads": threads 1
// and 2 give the same bytes).
const SpanThreads = 1

// spanned is o with a span encoder's defaults.
func (o Options) spanned() Options {
	if o.Threads == 0 {
		o.Threads = SpanThreads
	}
	return o
}

// Identity is a canonical description of everything in o that decides the
// bytes of a planned encode (EncodeSpans): ffmpeg's whole command line
// after defaults (codec, preset, CRF, GOP, fragments, threads, size, rate
// and every fixed argument), the number of frames and the plan's version. The same Identity and the same frames give the same bytes from
// the same ffmpeg build; the build itself is not part of it, so a cache
// shared by servers with different ffmpeg builds must add it. FFmpegPath
// and Nice change no byte and are left out.
func (o Options) Identity() (string, error) {
	o, err := o.spanned().withDefaults()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("ffmpeg %s; frames=%d; plan=%s", strings.Join(args(o), " "), o.Frames, planVersion), nil
}
