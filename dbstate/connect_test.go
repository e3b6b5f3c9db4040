package dbstate

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// TestConnectTimeoutBoundsTheHandshake: a listener that accepts and never sends a handshake fails the connect
// after the client's timeout, not after the caller's (much longer) deadline.
func TestConnectTimeoutBoundsTheHandshake(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		var held []net.Conn // accepted, never answered; closed once the listener is
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	c := NewClient(Credentials{User: "u"}, 200*time.Millisecond, nil)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = c.Vars(ctx, l.Addr().String())
	if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "connect timeout 200ms") {
		t.Fatalf("err = %v (ctx: %v)", err, ctx.Err())
	}
	in := c.ReadInstance(ctx, l.Addr().String())
	if !strings.Contains(in.Error, "connect timeout") || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("ReadInstance: %q", in.Error)
	}
}
