package main

import (
	"context"
	"io"
)

func runExporter(ctx context.Context, args []string, stdout, stderr io.Writer) int { return 2 }
