package buildinfo

import (
	"runtime"
	"strings"
	"testing"
)

// TestRead: a test binary carries its Go release and a module version;
// nothing is left empty.
func TestRead(t *testing.T) {
	i := Read()
	if i.GoVersion != runtime.Version() || i.Version == "" || i.Revision == "" || i.Time == "" {
		t.Errorf("Read() = %+v", i)
	}
	if s := i.String(); !strings.Contains(s, i.GoVersion) || !strings.Contains(s, i.Revision) {
		t.Errorf("String() = %q", s)
	}
}
