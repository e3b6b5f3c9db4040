package origin

import (
	"errors"
	"net/url"
	"testing"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name, from, to string
		ok             bool
	}{
		{"same", "http://h:8190/a/", "http://h:8190/b/", true},
		{"default port", "http://h/a/", "http://H:80/b", true},
		{"https default port", "https://h/a/", "https://h:443/b", true},
		{"other port", "http://h:8190/", "http://h:8191/", false},
		{"other host", "http://h/", "http://evil/", false},
		{"other scheme", "http://h/", "https://h/", false},
		{"credentials do not matter", "http://u:p@h/", "http://h/x", true},
		{"ipv6", "http://[::1]:80/", "http://[::1]/", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			from, _ := url.Parse(tt.from)
			to, _ := url.Parse(tt.to)
			err := Check(from, to)
			if (err == nil) != tt.ok || err != nil && !errors.Is(err, ErrOffOrigin) {
				t.Fatalf("Check(%s, %s) = %v, want ok=%v", tt.from, tt.to, err, tt.ok)
			}
		})
	}
}
