package main

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/hub"
	"github.com/hubjobs/hubjobs/jobs"
	"github.com/hubjobs/hubjobs/rollout"
)

// With rollouts.enabled the portal runs the engine: it takes the lease,
// and a rollout created through it reaches the hub with the engine as
// the job's creator.
func TestServeRunsTheRolloutEngine(t *testing.T) {
	w := newWorld(t)
	setup := newPortalSetup(t, w, "sqlite://"+filepath.Join(t.TempDir(), "audit.db"),
		"rollouts:\n  enabled: true\n  poll_interval: 1s\n")
	p := inProcess(t, setup)
	waitStatus(t, setup.publicURL+"/healthz", http.StatusOK, 5*time.Second)
	if p.engine == nil {
		t.Fatal("rollouts.enabled built no engine")
	}
	spec := rollout.Spec{Hub: "prod", Type: hub.TypeScheduleDeviceMethod,
		Method: &hub.CloudToDeviceMethod{MethodName: "reboot", ResponseTimeoutInSeconds: 30}, Condition: "*", MaxExecution: time.Hour, WaitForSlot: true}
	origin := jobs.Origin{Actor: audit.Actor{Issuer: "https://idp", Subject: "alice", Name: "alice"}, RequestID: "r1"}
	ro, err := p.engine.Create(context.Background(), origin, "wiring1", spec)
	if err != nil {
		t.Fatal(err)
	}
	if ro.Status.State.Final() {
		t.Fatalf("rollout %+v", ro.Status)
	}
	// The demo's jobs hold the slots for a while; the wait is on record
	// and the rollout is there to be read and halted.
	if _, err := p.engine.Halt(context.Background(), origin, "prod", "wiring1", "test over"); err != nil {
		t.Fatal(err)
	}
	es, err := p.store.List(context.Background(), audit.Filter{JobID: "wiring1", OldestFirst: true})
	if err != nil || len(es) < 2 || es[0].Action != audit.RolloutCreated || es[len(es)-1].Action != audit.RolloutHalted {
		t.Fatalf("trail %v %+v", err, es)
	}
}
