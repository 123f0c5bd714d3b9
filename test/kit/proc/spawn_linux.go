package proc

import (
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

// sysProcAttr puts the child in its own process group and has the kernel kill it if we die.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// Pdeathsig fires when the OS thread that forked the child exits, not when the process does,
// and the Go runtime ends a thread whenever a goroutine locked to it returns. So every child is
// forked from one goroutine that keeps its thread locked for the life of the program, started
// on the first Spawn.
var (
	spawnOnce     sync.Once
	spawnRequests chan spawnRequest
)

type spawnRequest struct {
	cmd    *exec.Cmd
	result chan error
}

// Spawn starts cmd from one OS thread that lives as long as the program, so a child whose
// SysProcAttr asks for Pdeathsig is killed when this process dies, not when some goroutine's
// thread happens to exit.
func Spawn(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnRequests = make(chan spawnRequest)
		go func() {
			runtime.LockOSThread() // never unlocked: this thread lives as long as the program
			for req := range spawnRequests {
				req.result <- req.cmd.Start()
			}
		}()
	})
	req := spawnRequest{cmd: cmd, result: make(chan error, 1)}
	spawnRequests <- req
	return <-req.result
}
