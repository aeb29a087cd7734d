//go:build !linux

package main

import "syscall"

func dieWithParent(bool) *syscall.SysProcAttr { return nil }
