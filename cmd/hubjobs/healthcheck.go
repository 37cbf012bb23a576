package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/hubjobs/hubjobs/config"
)

// healthcheckTimeout bounds one probe; container runtimes run the check often
// and a hung check must not pile up.
const healthcheckTimeout = 3 * time.Second

// runHealthcheck probes a running portal for a container HEALTHCHECK (the
// distroless image has no curl): exit 0 on 200, else 1. The URL defaults to
// /readyz on the port of HUBJOBS_LISTEN (or 8080) at 127.0.0.1, since the
// check runs inside the portal's own container.
func runHealthcheck(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := newFlagSet("healthcheck")
	target := fs.String("url", "", "URL to probe (default http://127.0.0.1:<port of HUBJOBS_LISTEN or 8080>/readyz)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *target == "" {
		*target = defaultHealthURL(getenv(config.EnvPrefix + "_LISTEN"))
	}
	ctx, cancel := context.WithTimeout(ctx, healthcheckTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *target, nil)
	if err != nil {
		return &usageError{fmt.Sprintf("healthcheck: bad --url: %v", err)}
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		return &exitStatusError{code: 1, msg: fmt.Sprintf("healthcheck: %v", err)}
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return &exitStatusError{code: 1, msg: fmt.Sprintf("healthcheck: %s answered %s", *target, resp.Status)}
	}
	fmt.Fprintf(stdout, "healthcheck: %s answered %s\n", *target, resp.Status)
	return nil
}

// defaultHealthURL turns a listen address into the loopback URL of /readyz.
func defaultHealthURL(listen string) string {
	port := "8080"
	host := "127.0.0.1"
	if h, p, err := net.SplitHostPort(listen); err == nil {
		port = p
		if h != "" && h != "0.0.0.0" && h != "::" {
			host = h
		}
	}
	return "http://" + net.JoinHostPort(host, port) + "/readyz"
}

// newFlagSet makes a subcommand's flag set that reports instead of exiting.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("hubjobs "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parseFlags parses args; a bad flag or a stray argument is a usage error
// that shows the subcommand's flags.
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err == nil && fs.NArg() > 0 {
		err = fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err != nil {
		return &usageError{fmt.Sprintf("%s: %v\nflags:\n%s", fs.Name(), err, flagUsage(fs))}
	}
	return nil
}

func flagUsage(fs *flag.FlagSet) string {
	var out string
	fs.VisitAll(func(f *flag.Flag) {
		out += fmt.Sprintf("  --%s  %s\n", f.Name, f.Usage)
	})
	return out
}
