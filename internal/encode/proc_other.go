//go:build !unix

package encode

import (
	"os"
	"os/exec"
)

func setProcAttr(*exec.Cmd) {}

func killTree(p *os.Process) { _ = p.Kill() }
