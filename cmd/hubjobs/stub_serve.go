package main

// STUB — owned by the ops helper; the portal wiring of runServe and runDemo
// lands once the portal's packages do (config, logging and healthcheck are
// real already).

import (
	"context"
	"errors"
	"io"
)

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve")
	path := fs.String("config", "", "config file (YAML; see config.example.yaml)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" {
		return &usageError{"serve: --config FILE is required\nflags:\n" + flagUsage(fs)}
	}
	if _, err := loadConfig(*path, getenv); err != nil {
		return err
	}
	return errors.New("serve: not wired yet")
}

func runDemo(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	panic("stub")
}
