//go:build !linux

package nice

// Run calls f; niceness is applied on Linux only.
func Run(_ int, f func() error) error { return f() }
