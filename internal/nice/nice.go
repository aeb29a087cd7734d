// Package nice runs bulk work at a lower CPU priority, so that the kernel
// gives a CPU to the server's RPC handling first: ffmpeg children, and the
// drawing of stills.
package nice

// Max is the largest niceness, the kernel's lowest priority.
const Max = 19
