package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/hubjobs/hubjobs/hub/hubsim"
)

// hubsimFailureRate is the command's default share of failing devices: a
// few, so per-device errors show up without making every job fail.
const hubsimFailureRate = 0.05

// runHubsim is `hubjobs hubsim --listen ADDR [--hostname NAME] [--key
// BASE64] [--devices N] [--device-rate R] [--max-active-jobs N] [--seed]`:
// the IoT Hub simulator alone. Its first stdout line is the connection
// string, the second the URL it serves on (useful with port 0); requests
// are logged to stderr. It serves until ctx is cancelled.
//
// --seed is a switch: fill the hub with SeedDemo's jobs. Further flags:
// --failure-rate, --jobs-ops-per-minute, --queries-per-minute and
// --registry FILE (a JSON array of devices replacing the generated fleet;
// with it the failure rate defaults to 0, so that only the devices the
// file marks "fail" fail).
func runHubsim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("hubsim")
	listen := fs.String("listen", "", "address to serve on, e.g. 127.0.0.1:9000 (port 0 picks a free one); required")
	hostname := fs.String("hostname", hubsim.DefaultHostname, "hub host name; SAS tokens must be issued for it")
	key := fs.String("key", "", "iothubowner shared access key, standard base64 (random when empty)")
	devices := fs.Int("devices", hubsim.DefaultDevices, "devices in the simulated registry")
	rate := fs.Float64("device-rate", hubsim.DefaultDeviceRate, "devices processed per second per running job")
	maxActive := fs.Int("max-active-jobs", hubsim.DefaultMaxActiveJobs, "unfinished jobs before 429 ThrottlingMaxActiveJobCountExceeded (S1: 1, S3: 10)")
	seed := fs.Bool("seed", false, "create demo jobs in every state")
	failureRate := fs.Float64("failure-rate", hubsimFailureRate, "share of ok devices that fail, 0..1 (default 0 with --registry)")
	opsPerMinute := fs.Int("jobs-ops-per-minute", 0, "jobs operations per minute before 429 ThrottlingException (0: unlimited)")
	queriesPerMinute := fs.Int("queries-per-minute", 0, "POST /devices/query calls per minute before 429 ThrottlingException (0: unlimited; S1: 20)")
	registryFile := fs.String("registry", "", `JSON array of devices {"deviceId","tags"?,"reported"?,"behaviour"?: "ok"|"fail"|"unhealthy"} replacing the generated registry (--devices is then ignored)`)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	opts := hubsim.Options{
		Hostname: *hostname, Devices: *devices, DeviceRate: *rate, FailureRate: *failureRate,
		MaxActiveJobs: *maxActive, JobOpsPerMinute: *opsPerMinute, QueriesPerMinute: *queriesPerMinute,
	}
	var problems []string
	if *listen == "" {
		problems = append(problems, "--listen is required")
	}
	if *hostname == "" || strings.ContainsAny(*hostname, ";= \t/") {
		problems = append(problems, fmt.Sprintf("--hostname %q: want a host name such as %s", *hostname, hubsim.DefaultHostname))
	}
	if *key != "" {
		k, err := base64.StdEncoding.DecodeString(*key)
		if err != nil || len(k) == 0 {
			problems = append(problems, "--key: not standard base64")
		}
		opts.Key = k
	}
	if *devices < 1 || *devices > 1_000_000 {
		problems = append(problems, fmt.Sprintf("--devices %d: want 1..1000000", *devices))
	}
	if !(*rate > 0) || *rate > 1e6 {
		problems = append(problems, fmt.Sprintf("--device-rate %g: want a positive number of devices per second", *rate))
	}
	if *maxActive < 1 {
		problems = append(problems, fmt.Sprintf("--max-active-jobs %d: want at least 1", *maxActive))
	}
	if !(*failureRate >= 0 && *failureRate <= 1) {
		problems = append(problems, fmt.Sprintf("--failure-rate %g: want 0..1", *failureRate))
	}
	if *opsPerMinute < 0 {
		problems = append(problems, fmt.Sprintf("--jobs-ops-per-minute %d: want 0 (unlimited) or more", *opsPerMinute))
	}
	if *queriesPerMinute < 0 {
		problems = append(problems, fmt.Sprintf("--queries-per-minute %d: want 0 (unlimited) or more", *queriesPerMinute))
	}
	if *registryFile != "" {
		registry, err := loadRegistryFile(*registryFile)
		if err != nil {
			problems = append(problems, "--registry: "+err.Error())
		}
		opts.Registry = registry
		if !flagSet(fs, "failure-rate") {
			opts.FailureRate = 0
		}
	}
	if len(problems) > 0 {
		return &usageError{"hubsim: " + strings.Join(problems, "; ")}
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("hubsim: %w", err)
	}
	sim := hubsim.New(opts)
	if *seed {
		sim.SeedDemo()
	}
	fmt.Fprintln(stdout, sim.ConnectionString())
	fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr())

	logger := slog.New(slog.NewTextHandler(stderr, nil))
	srv := &http.Server{Handler: logRequests(logger, sim), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("hubsim: %w", err)
	case <-ctx.Done():
	}
	sim.Close() // release requests held by injected hangs
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("hubsim: shutdown: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("hubsim: %w", err)
	}
	return nil
}

func loadRegistryFile(path string) ([]hubsim.Device, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	devices, err := hubsim.LoadRegistry(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return devices, nil
}

// flagSet reports whether the command line set the flag name.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// logRequests logs one line per request: what a person running the
// simulator by hand wants to see.
func logRequests(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		logger.Info("hub request", "method", r.Method, "path", r.URL.Path, "status", sw.status,
			"errorcode", sw.Header().Get("iothub-errorcode"), "duration", time.Since(start).Round(time.Microsecond))
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}
