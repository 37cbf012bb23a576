// Command hubjobs is a web portal for Azure IoT Hub scheduled jobs. It also
// runs the embedded demo, the IoT Hub simulator and audit-trail tools.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/hubjobs/hubjobs/config"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal starts a graceful shutdown, restore the default
	// handling: a second Ctrl-C or SIGTERM ends the process at once.
	go func() {
		<-ctx.Done()
		stop()
	}()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	os.Exit(exitCode(err, os.Stderr))
}

// usageError is a command-line problem: exit code 2, like a *config.Error.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// exitStatusError carries an exit code a subcommand chose (audit verify: 1).
type exitStatusError struct {
	code int
	msg  string
}

func (e *exitStatusError) Error() string { return e.msg }

func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, err)
	if errors.As(err, new(*usageError)) || errors.As(err, new(*config.Error)) {
		return 2
	}
	var se *exitStatusError
	if errors.As(err, &se) {
		return se.code
	}
	return 1
}

const usage = `usage: hubjobs <command> [flags]

commands:
  serve --config FILE     run the portal
  demo [--listen ADDR]    run everything embedded (portal, two simulated hubs, demo IdP)
  hubsim --listen ADDR    run the IoT Hub simulator alone
  audit verify|export     check or export the audit trail
  healthcheck             probe a running portal (container health check)
  version                 print the version`

// run dispatches a subcommand. It is the only place that wires components.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return &usageError{usage}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, getenv, stdout, stderr)
	case "demo":
		return runDemo(ctx, rest, getenv, stdout, stderr)
	case "hubsim":
		return runHubsim(ctx, rest, stdout, stderr)
	case "audit":
		return runAudit(ctx, rest, getenv, stdout, stderr)
	case "healthcheck":
		return runHealthcheck(ctx, rest, getenv, stdout)
	case "version":
		fmt.Fprintf(stdout, "hubjobs %s\n", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return &usageError{fmt.Sprintf("hubjobs: unknown command %q\n%s", cmd, usage)}
}
