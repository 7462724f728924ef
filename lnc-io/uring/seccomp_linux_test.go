//go:build linux

package uring

import (
	"errors"
	"runtime"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestAvailableUnderSeccomp reproduces what containers do: a seccomp filter
// makes io_uring_setup fail with EPERM (Docker's default profile) or ENOSYS.
// The filter is installed on one OS thread only (no TSYNC), by a goroutine
// that stays locked to that thread and exits locked, so the Go runtime
// destroys the thread afterwards and nothing else runs under the filter.
func TestAvailableUnderSeccomp(t *testing.T) {
	var arch uint32
	switch runtime.GOARCH {
	case "amd64":
		arch = unix.AUDIT_ARCH_X86_64
	case "arm64":
		arch = unix.AUDIT_ARCH_AARCH64
	default:
		t.Skipf("no seccomp arch constant for %s in this test", runtime.GOARCH)
	}
	for _, errno := range []unix.Errno{unix.EPERM, unix.ENOSYS} {
		t.Run(errno.Error(), func(t *testing.T) {
			done := make(chan error, 1)
			installed := make(chan error, 1)
			go func() {
				runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
				if err := denyIOURingSetup(arch, errno); err != nil {
					installed <- err
					return
				}
				installed <- nil
				done <- Available()
			}()
			if err := <-installed; err != nil {
				t.Skipf("cannot install a seccomp filter here: %v", err)
			}
			err := <-done
			if !errors.Is(err, ErrUnavailable) || !errors.Is(err, errno) {
				t.Fatalf("Available under seccomp returning %v = %v; want ErrUnavailable wrapping it", errno, err)
			}
			t.Logf("Available: %v", err)
		})
	}
}

// denyIOURingSetup installs, on the calling thread, a seccomp filter that
// fails io_uring_setup with errno and allows everything else.
func denyIOURingSetup(arch uint32, errno unix.Errno) error {
	const (
		ldAbs = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		ret   = unix.BPF_RET | unix.BPF_K
	)
	// struct seccomp_data: nr at offset 0, arch at offset 4.
	prog := []unix.SockFilter{
		{Code: ldAbs, K: 4},
		{Code: jeq, K: arch, Jt: 0, Jf: 3},
		{Code: ldAbs, K: 0},
		{Code: jeq, K: unix.SYS_IO_URING_SETUP, Jt: 0, Jf: 1},
		{Code: ret, K: unix.SECCOMP_RET_ERRNO | uint32(errno)},
		{Code: ret, K: unix.SECCOMP_RET_ALLOW},
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return err
	}
	// unsafe: &fprog is converted in the argument list of the assembly
	// unix.Syscall, so it stays alive and in place for the call; the
	// kernel copies the program during the call.
	if _, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&fprog))); e != 0 {
		return e
	}
	runtime.KeepAlive(prog)
	return nil
}
