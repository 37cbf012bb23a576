package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/hubjobs/hubjobs/config"
)

// runServe is `hubjobs serve --config FILE`: the portal.
func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve")
	path := fs.String("config", "", "config file (YAML; see config.example.yaml)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" {
		return &usageError{"serve: --config FILE is required\nflags:\n" + flagUsage(fs)}
	}
	cfg, err := config.Load(*path, getenv)
	if err != nil {
		return err
	}
	logger := newLogger(stderr, cfg.Log)
	// Listen first: the port answers (/healthz 200, /readyz 503) while the
	// identity provider is being discovered.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	p, err := newPortal(ctx, cfg, logger, portalOptions{})
	if err != nil {
		ln.Close()
		return err
	}
	defer p.Close()
	logger.Info("hubjobs serving", "addr", ln.Addr().String(), "public_url", cfg.PublicURL, "version", version, "hubs", len(cfg.Hubs))
	return p.serve(ctx, ln)
}

// serve answers on ln until ctx ends, then shuts down gracefully:
// readyz turns 503 so load balancers stop sending new work, the drain delay
// lets them notice, and Shutdown waits (up to ShutdownTimeout) for in-flight
// requests — a cancel included, with both its audit entries — to finish.
// Request contexts do not derive from ctx, so SIGTERM aborts nothing.
func (p *portal) serve(ctx context.Context, ln net.Listener) error {
	s := p.cfg.Server
	srv := &http.Server{
		Handler:           p.handler,
		ReadHeaderTimeout: s.ReadHeaderTimeout,
		ReadTimeout:       s.ReadTimeout,
		WriteTimeout:      s.WriteTimeout,
		IdleTimeout:       s.IdleTimeout,
		MaxHeaderBytes:    s.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(p.logger.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	p.logger.Info("shutting down: draining", "drain_delay", s.DrainDelay.String(), "shutdown_timeout", s.ShutdownTimeout.String())
	p.web.SetDraining()
	drain := time.NewTimer(s.DrainDelay)
	select {
	case <-drain.C:
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), s.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		srv.Close()
		return fmt.Errorf("shutdown: requests still running after %s: %w", s.ShutdownTimeout, err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	p.logger.Info("shutdown complete")
	return nil
}
