package main

// STUB — owned by the ops helper (serve, demo, config, healthcheck); replace.

import (
	"context"
	"io"
)

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	panic("stub")
}
func runDemo(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	panic("stub")
}
func runHealthcheck(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	panic("stub")
}

// config is the parsed YAML config (design.md "Config file"); the ops helper
// owns and completes it. Other subcommands read only what they need.
type config struct {
	Audit struct {
		Database string `yaml:"database"`
	} `yaml:"audit"`
}

// loadConfig reads FILE, expands ${VAR}, applies HUBJOBS_* overrides and
// validates; problems come back as one *usageError naming every bad key.
func loadConfig(path string, getenv func(string) string) (*config, error) { panic("stub") }
