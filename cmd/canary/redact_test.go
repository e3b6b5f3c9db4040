package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestCheckConfigJSONRedactsDestinations: check-config --json shows destination URLs with their credentials
// as ***, as the table does. On main, --json printed the password.
func TestCheckConfigJSONRedactsDestinations(t *testing.T) {
	configFor, _ := world(t)
	cfg := writeConfig(t, configFor("streams:\n  - {name: test.event, schema_title: test/event, destinations: [\"http://u:hunter2@127.0.0.1:1/v1/events\"]}\n"))
	for _, args := range [][]string{{"check-config", "--config", cfg}, {"check-config", "--config", cfg, "--json"}} {
		var out, errs bytes.Buffer
		code := run(context.Background(), args, &out, &errs)
		if code != 0 || strings.Contains(out.String()+errs.String(), "hunter2") || !strings.Contains(out.String(), "***@") {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out.String(), errs.String())
		}
	}
}
