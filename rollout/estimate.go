package rollout

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Exposure is the worst case of a plan: how many devices can receive the
// change before any halt can stop it.
type Exposure struct {
	Devices int
	Text    string // "at most 260 devices receive this before a halt can stop it: …"
}

// WorstCase reasons out how many devices a plan exposes before a halt can
// act. A running hub job cannot be cancelled, so the first wave is reached
// in full whatever happens. The failure rule is applied to a finished wave
// before the next one is created, so it adds nothing. The health query,
// however, is counted as the bake ends, which is exactly when the next
// wave's scheduled jobs start: up to maxActiveJobs of them may already be
// running when that rule fires, and they too run to the end.
func WorstCase(p *Plan, r Rules, maxActiveJobs int) Exposure {
	first := p.Waves[0]
	if len(p.Waves) == 1 {
		return Exposure{Devices: p.Devices, Text: fmt.Sprintf(
			"all %s receive this before a halt can stop it: the rollout has one wave, and a running hub job cannot be cancelled",
			devicesWord(p.Devices))}
	}
	e := Exposure{Devices: first.Size, Text: fmt.Sprintf(
		"at most %s receive this before a halt can stop it: all %s of wave 1, whose jobs cannot be cancelled once running",
		devicesWord(first.Size), count(first.Size))}
	if r.HealthQuery == "" {
		return e
	}
	second := p.Waves[1]
	started := 0
	for _, j := range second.Jobs[:min(max(maxActiveJobs, 1), len(second.Jobs))] {
		started += jobSize(j, second)
	}
	e.Devices += started
	e.Text = fmt.Sprintf(
		"at most %s receive this before a halt can stop it: all %s of wave 1, whose jobs cannot be cancelled once running, and %s of wave 2, whose scheduled jobs start as the bake ends, when the health query is counted",
		devicesWord(e.Devices), count(first.Size), count(started))
	return e
}

// jobSize is the number of devices a job targets; a condition plan's only
// job targets its whole wave.
func jobSize(j Job, w Wave) int {
	if j.Devices == nil {
		return w.Size
	}
	return len(j.Devices)
}

// ErrCapacity: an estimate needs a positive device rate and job limit.
var ErrCapacity = errors.New("invalid hub capacity")

// Capacity is what the hub allows a rollout.
type Capacity struct {
	// DeviceRate is the hub's job device operations per second, shared by
	// all its running jobs: 10/s on S1, max(10, 1/unit)/s on S2, 50/s/unit on S3.
	DeviceRate float64
	// MaxActiveJobs is the hub's concurrent-job limit: 1 (S1), 5 (S2), 10 (S3).
	MaxActiveJobs int
	// PollInterval is how late, at worst, the engine sees a job finish.
	PollInterval time.Duration
}

// WaveETA is the estimate for one wave.
type WaveETA struct {
	Wave    int
	Devices int
	Jobs    int
	Rounds  int           // batches of at most MaxActiveJobs jobs
	Bake    time.Duration // wait before the wave; 0 for the first
	Run     time.Duration // from the wave's first job starting to the engine seeing the last finish
}

// ETA is a plan's estimated duration, not counting the time approvers
// take.
type ETA struct {
	Waves []WaveETA
	Total time.Duration
}

// Estimate models a wave as its devices processed at the hub's device rate
// (the rate is per hub, so parallel jobs do not make it faster), plus, for
// each round of at most MaxActiveJobs jobs, one poll interval for the
// engine to notice the round finished and start the next; and a bake
// before every wave but the first.
func Estimate(p *Plan, bake time.Duration, c Capacity) (ETA, error) {
	if c.DeviceRate <= 0 || c.MaxActiveJobs < 1 || c.PollInterval < 0 {
		return ETA{}, fmt.Errorf("%w: device rate %g/s, %d active jobs, poll interval %s", ErrCapacity, c.DeviceRate, c.MaxActiveJobs, c.PollInterval)
	}
	var eta ETA
	for i, w := range p.Waves {
		rounds := (len(w.Jobs) + c.MaxActiveJobs - 1) / c.MaxActiveJobs
		run := time.Duration(math.Ceil(float64(w.Size)/c.DeviceRate*float64(time.Second))) + time.Duration(rounds)*c.PollInterval
		we := WaveETA{Wave: w.Number, Devices: w.Size, Jobs: len(w.Jobs), Rounds: rounds, Run: run}
		if i > 0 {
			we.Bake = bake
		}
		eta.Waves = append(eta.Waves, we)
		eta.Total += we.Bake + we.Run
	}
	return eta, nil
}
