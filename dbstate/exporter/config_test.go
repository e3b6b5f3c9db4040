package exporter

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
		err  string
	}{
		{"seeds", Config{Seeds: []string{"127.0.0.1:3306"}}, ""},
		{"instances", Config{Instances: []string{"127.0.0.1:3306", "localhost:3307"}}, ""},
		{"neither", Config{}, "no seeds and no instances"},
		{"both", Config{Seeds: []string{"a:1"}, Instances: []string{"b:1"}}, "exclusive"},
		{"bad instance", Config{Instances: []string{"nohost"}}, "want host:port"},
		{"negative interval", Config{Seeds: []string{"a:1"}, RefreshInterval: -time.Second}, "positive"},
		{"negative parallel", Config{Seeds: []string{"a:1"}, Parallel: -1}, "positive"},
		{"too many instances", Config{Instances: []string{"a:1", "b:1"}, MaxInstances: 1}, "more than the bound"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.cfg.Validate()
			if (c.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.err)) {
				t.Fatalf("Validate() = %v, want %q", err, c.err)
			}
		})
	}
	d := DefaultConfig()
	if d.RefreshInterval != 10*time.Second || d.InstanceTimeout != 2*time.Second || d.Parallel != 8 || d.MaxInstances != 200 {
		t.Fatalf("defaults: %+v", d)
	}
}

func TestBoundLabel(t *testing.T) {
	if got := boundLabel(strings.Repeat("é", 40)); len(got) > 64 || !strings.HasPrefix(got, "éé") {
		t.Fatalf("%q", got)
	}
	if got := boundLabel("10.11\xff"); got != "10.11?" {
		t.Fatalf("%q", got)
	}
}
