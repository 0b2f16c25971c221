package loadgen

import "syscall"

// stopSelf stops this process until something sends it SIGCONT.
func stopSelf() error { return syscall.Kill(syscall.Getpid(), syscall.SIGSTOP) }
