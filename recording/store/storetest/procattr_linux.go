package storetest

import "syscall"

// procAttr makes the kernel kill the server if the test binary dies first
// (a panic or a -timeout), so no MinIO outlives its test.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
