package main

// STUB — owned by the hubsim helper; replace with hubsim.go.

import (
	"context"
	"io"
)

func runHubsim(ctx context.Context, args []string, stdout, stderr io.Writer) error { panic("stub") }
