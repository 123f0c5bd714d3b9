//go:build !linux

package testenv

import "syscall"

// sysProcAttr puts the child in its own process group. Only Linux can also
// kill children when the parent dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
