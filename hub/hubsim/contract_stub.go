package hubsim

// CONTRACT STUB — owned by the hubsim helper, who replaces this file. The
// simulator is independent of package hub on purpose (own wire structs, own
// SAS verifier) so that a client bug cannot hide behind a shared type.

import (
	"net/http"
	"time"
)

// Clock is the simulator's notion of now; tests inject a manual clock.
type Clock interface{ Now() time.Time }

// Options configure a Sim (see `hubjobs hubsim` flags in design.md).
type Options struct {
	Hostname        string        // e.g. sim-hub.azure-devices.net
	Key             []byte        // iothubowner key (random when nil)
	Devices         int           // registry size, with tags
	DeviceRate      float64       // devices processed per second per running job
	FailureRate     float64       // share of devices that fail (0..1)
	MaxActiveJobs   int           // unfinished jobs before 429 ThrottlingMaxActiveJobCountExceeded (default 10)
	JobOpsPerMinute int           // jobs-operations token bucket before 429 ThrottlingException (0 = unlimited)
	Retention       time.Duration // default 30 days
	Clock           Clock         // default wall clock
}

// Sim is a wire-faithful IoT Hub jobs endpoint.
type Sim struct{}

func New(o Options) *Sim                                        { panic("stub") }
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) { panic("stub") }

// ConnectionString is HostName=…;SharedAccessKeyName=iothubowner;SharedAccessKey=….
func (s *Sim) ConnectionString() string { panic("stub") }

// SeedDemo fills the hub with jobs in every state (some live, some with failing devices).
func (s *Sim) SeedDemo() { panic("stub") }
