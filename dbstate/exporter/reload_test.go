package exporter

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/evenkeel/evenkeel/dbstate"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestReloadDesiredVars: a reload whose file does not parse keeps the running document and counts a failure that
// an alert can see; the next good reload clears it. No server is needed: nothing is read before Run.
func TestReloadDesiredVars(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	c := dbstate.NewClient(dbstate.Credentials{User: "u"}, 0, nil)
	defer c.Close()
	e, err := New(c, Config{Instances: []string{"127.0.0.1:1"}}, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	good := &dbstate.DesiredVars{Variables: map[string]string{"max_connections": "500"}}
	check := func(step string, ok float64, failures, successes int, vars float64) {
		t.Helper()
		want := `
# HELP dbstate_desired_variables Variables named in the desired-variables file (0 without one).
# TYPE dbstate_desired_variables gauge
dbstate_desired_variables ` + ftoa(vars) + `
# HELP dbstate_exporter_config_last_reload_successful 1 when the last load of the desired files succeeded (at start or on SIGHUP), 0 when it failed and the previous ones are still used.
# TYPE dbstate_exporter_config_last_reload_successful gauge
dbstate_exporter_config_last_reload_successful ` + ftoa(ok) + `
# HELP dbstate_exporter_config_reloads_total Loads of the desired files (at start and on SIGHUP), by result (success, failure).
# TYPE dbstate_exporter_config_reloads_total counter
dbstate_exporter_config_reloads_total{result="failure"} ` + ftoa(float64(failures)) + `
dbstate_exporter_config_reloads_total{result="success"} ` + ftoa(float64(successes)) + `
`
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "dbstate_desired_variables",
			"dbstate_exporter_config_last_reload_successful", "dbstate_exporter_config_reloads_total"); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	if err := e.ReloadDesiredVars(func() (*dbstate.DesiredVars, error) { return good, nil }); err != nil {
		t.Fatal(err)
	}
	check("first load", 1, 0, 1, 1)
	broken := errors.New("desired variables: yaml: line 3: did not find expected key")
	if err := e.ReloadDesiredVars(func() (*dbstate.DesiredVars, error) { return nil, broken }); !errors.Is(err, broken) {
		t.Fatalf("broken reload: err = %v", err)
	}
	check("broken reload keeps the running file", 0, 1, 1, 1)
	if err := e.ReloadDesiredVars(func() (*dbstate.DesiredVars, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
	check("a good reload (without a file) clears the failure", 1, 1, 2, 0)
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
