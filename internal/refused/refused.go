// Package refused gives tests a loopback address where every connection is refused, for as long as the test
// runs. The usual trick (start a server, note its port, close it) leaves the port free for any other process to
// take, and on a machine running several test binaries at once one sometimes does: the test then meets a
// server instead of a refused connection. Here the port stays bound (without listening, and without
// SO_REUSEADDR), so the kernel refuses connections to it and gives it to nobody else until the test ends.
package refused

import (
	"fmt"
	"syscall"
	"testing"
)

// Addr returns "127.0.0.1:port", a port that refuses every connection until t ends.
func Addr(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("refused: socket: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("refused: bind: %v", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatalf("refused: getsockname: %v", err)
	}
	in, ok := sa.(*syscall.SockaddrInet4)
	if !ok {
		t.Fatalf("refused: getsockname: %T", sa)
	}
	return fmt.Sprintf("127.0.0.1:%d", in.Port)
}

// URL returns "http://" + Addr(t).
func URL(t testing.TB) string {
	t.Helper()
	return "http://" + Addr(t)
}
