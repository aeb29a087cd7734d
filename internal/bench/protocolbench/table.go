package protocolbench

import (
	"fmt"
	"io"
)

// WriteTable writes the report as a Markdown table, the form
// docs/PERFORMANCE.md quotes.
func (rep *Report) WriteTable(w io.Writer) {
	c := rep.Config
	fmt.Fprintf(w, "%d×%d, %d frames at %d fps, %d wheels; medians of %d interleaved rounds\n\n", c.Width, c.Height, c.Frames, c.FPS, c.Wheels, c.Reps)
	fmt.Fprintln(w, "| protocol | frames/s | × gRPC (paired per round) | first fragment at the client | whirl process CPU per video |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for _, r := range rep.Results {
		fmt.Fprintf(w, "| %s | %.1f | %.2f | %.3f s | %.2f s |\n", r.Protocol, r.MedianFPS, r.RatioToGRPC, r.MedianFirstFragment, r.MedianProcCPU)
	}
}
