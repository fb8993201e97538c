//go:build !unix

package main

import "os/exec"

// configureChild leaves the child's process attributes at their defaults.
func configureChild(*exec.Cmd) {}
