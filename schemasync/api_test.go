package schemasync

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func apiGet(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

// TestAPIBeforeFirstScan: until the first scan round completes, /readyz and the schema route answer 503
// with the reason, and /healthz 200.
func TestAPIBeforeFirstScan(t *testing.T) {
	s := newTestService(t, svcConfig(serve(t, faultRepo())), ServiceOptions{})
	h := s.Handler()
	tests := []struct {
		name, path string
		code       int
		inBody     string
	}{
		{"readyz", "/readyz", http.StatusServiceUnavailable, "not ready: the first scan has not completed"},
		{"schema", "/v1/repositories/primary/schemas/a/b", http.StatusServiceUnavailable,
			`{"error":"not ready: the first scan has not completed"}`},
		{"unknown schema", "/v1/repositories/primary/schemas/no/such", http.StatusServiceUnavailable, "not ready"},
		{"healthz", "/healthz", http.StatusOK, "ok"},
		{"state", "/v1/state", http.StatusOK, `"ready":false`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := apiGet(t, h, tt.path)
			if code != tt.code || !strings.Contains(body, tt.inBody) {
				t.Errorf("GET %s: %d %s; want %d with %q", tt.path, code, body, tt.code, tt.inBody)
			}
		})
	}
	scanNow(t, s)
	if code, body := apiGet(t, h, "/readyz"); code != http.StatusOK {
		t.Errorf("readyz after the first scan: %d %s", code, body)
	}
	if code, body := apiGet(t, h, "/v1/repositories/primary/schemas/a/b"); code != http.StatusOK ||
		!strings.Contains(body, `"safe_version":"1.1.0"`) {
		t.Errorf("schema after the first scan: %d %s", code, body)
	}
}

// TestAPISafeVersionNull: a schema with no version on every endpoint answers 200 with "safe_version": null
// (present, not omitted), and "generated_at".
func TestAPISafeVersionNull(t *testing.T) {
	a := faultRepo()
	putAll(a, "only/here", "1.0.0")
	s := newTestService(t, svcConfig(serve(t, a), serve(t, faultRepo())), ServiceOptions{})
	scanNow(t, s)
	code, body := apiGet(t, s.Handler(), "/v1/repositories/primary/schemas/only/here")
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatalf("not JSON: %v: %s", err, body)
	}
	if v, ok := raw["safe_version"]; !ok || string(v) != "null" {
		t.Errorf("safe_version = %s (present %v), want null: %s", v, ok, body)
	}
	if v := string(raw["dirty"]); v != "true" {
		t.Errorf("dirty = %s, want true", v)
	}
	if _, ok := raw["generated_at"]; !ok {
		t.Errorf("no generated_at: %s", body)
	}
}
