package main

import (
	"bufio"
	"net"
	"strconv"
	"strings"
	"testing"
)

// fakeNode answers every request on a loopback port with the raw HTTP response resp, and returns its URL.
func fakeNode(t *testing.T, resp string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					l, err := r.ReadString('\n')
					if err != nil || l == "\r\n" {
						break
					}
				}
				_, _ = c.Write([]byte(resp))
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// TestMembersEscapesTheNode: what a node answers to `members` (its status line, its key fingerprints) is
// printed escaped: something listening at --node cannot write terminal escape sequences to the screen.
func TestMembersEscapesTheNode(t *testing.T) {
	const evil = "\x1b]0;owned\x07\x1b[2J"
	status := fakeNode(t, "HTTP/1.1 500 "+evil+"\r\nContent-Length: 0\r\n\r\n")
	body := `{"node":"n","cluster":true,"keys":["\u001b[2Jkey"],"members":[{"name":"n\u001b[2J","state":"alive"}]}`
	keys := fakeNode(t, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "+
		strconv.Itoa(len(body))+"\r\n\r\n"+body)
	for _, tt := range []struct {
		name, node string
		code       int
	}{
		{"status line", status, 1},
		{"key fingerprints and names", keys, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := runCmd("members", "--node", tt.node)
			if code != tt.code || strings.ContainsAny(out+errs, "\x1b\x07") {
				t.Fatalf("exit %d (want %d), an escape printed raw:\n%q\n%q", code, tt.code, out, errs)
			}
		})
	}
}
