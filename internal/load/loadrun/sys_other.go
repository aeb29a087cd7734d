//go:build !linux

package loadrun

func selfCPU() float64 { return 0 }
