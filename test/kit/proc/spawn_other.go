//go:build !linux

package proc

import (
	"os/exec"
	"syscall"
)

// sysProcAttr puts the child in its own process group. Only Linux can also kill children when
// the parent dies; elsewhere they are stopped by Stop.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// Spawn starts cmd. Without Pdeathsig, any thread may fork it.
func Spawn(cmd *exec.Cmd) error { return cmd.Start() }
