//go:build !unix

package protocolbench

// processCPU is not measured here.
func processCPU() float64 { return 0 }
