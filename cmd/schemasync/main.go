// Command schemasync scans schema hosts and publishes, for each schema, the highest version present on every
// host (the safe version), with a dirty flag while hosts disagree. Run "schemasync help" for the commands.
package main

import (
	"context"
	"os"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
