package schemasync

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestValidateReadsNoFile: Validate checks the configuration as written and reads nothing; the keyring and
// the credentials files are read by LoadFiles, the separate step, which names each file it could not read.
func TestValidateReadsNoFile(t *testing.T) {
	dir := t.TempDir()
	keyring, creds := filepath.Join(dir, "no-keyring.yml"), filepath.Join(dir, "no-creds")
	cfg := DefaultConfig()
	cfg.Cluster.Bind, cfg.Cluster.KeyringFile = "127.0.0.1:0", keyring
	cfg.Repositories = []RepositoryConfig{{Name: "primary", Endpoints: []string{"http://h1/j/"},
		CredentialsFiles: map[string]string{"http://h1/j/": creds}}}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate with files that do not exist: %v (it must not read them)", err)
	}
	_, err := cfg.LoadFiles()
	if err == nil || !strings.Contains(err.Error(), "no-keyring.yml") || !strings.Contains(err.Error(), "no-creds") {
		t.Fatalf("LoadFiles: %v, want both missing files named", err)
	}
}

// TestEndpointPortSpellings: a port is a number from 1 to 65535, compared as a number: ":080" is the default
// port spelled another way, so it names the same endpoint as no port, and a port out of range is no endpoint.
func TestEndpointPortSpellings(t *testing.T) {
	for _, tt := range []struct{ in, want, err string }{
		{"http://h1:080/j/", "http://h1/j/", ""},
		{"https://h1:0443/j", "https://h1/j/", ""},
		{"http://h1:08190/j/", "http://h1:8190/j/", ""},
		{"http://h1:99999/j/", "", "port"},
		{"http://h1:0/j/", "", "port"},
	} {
		got, _, err := NormalizeEndpoint(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("NormalizeEndpoint(%q) = %q, %v; want an error about the %s", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("NormalizeEndpoint(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	cfg := DefaultConfig()
	cfg.Repositories = []RepositoryConfig{{Name: "primary", Endpoints: []string{"http://h1/j/", "http://h1:080/j/"}}}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "already listed") {
		t.Fatalf("http://h1/j/ and http://h1:080/j/ both accepted: %v", err)
	}
}
