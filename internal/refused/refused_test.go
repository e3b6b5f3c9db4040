package refused

import (
	"errors"
	"net"
	"syscall"
	"testing"
)

// TestAddrRefusesAndIsTaken: a connection to the address is refused, and no listener can take its port.
func TestAddrRefusesAndIsTaken(t *testing.T) {
	addr := Addr(t)
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			t.Fatalf("dial %s succeeded", addr)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial %s: %v, want connection refused", addr, err)
		}
	}
	if ln, err := net.Listen("tcp", addr); err == nil {
		ln.Close()
		t.Fatalf("another listener took %s", addr)
	}
}
