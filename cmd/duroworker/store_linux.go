package main

import (
	"os/exec"
	"syscall"
)

// configureChild puts redis-server in its own process group, so that a
// Ctrl-C in the terminal reaches only duroworker, which then stops its
// workers before the store; and asks the kernel to kill it if duroworker
// dies without stopping it.
func configureChild(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
