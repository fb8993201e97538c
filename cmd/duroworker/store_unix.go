//go:build unix && !linux

package main

import (
	"os/exec"
	"syscall"
)

// configureChild puts redis-server in its own process group, so that a
// Ctrl-C in the terminal reaches only duroworker, which then stops its
// workers before the store.
func configureChild(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}
