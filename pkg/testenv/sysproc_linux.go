package testenv

import "syscall"

// sysProcAttr puts the child in its own process group (a terminal's Ctrl-C
// reaches only us, and we stop children in order) and kills it if we die.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
