package rollout

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/hubjobs/hubjobs/hub"
)

// storedSpec is Spec as the rollouts table keeps it. WaveSpec and Threshold
// hide their fields so that only parsing can make them; they are stored in
// the text an author would type and parsed back, so a stored rollout can
// never hold a value the form would refuse.
type storedSpec struct {
	Hub          string                   `json:"hub"`
	Type         hub.JobType              `json:"type"`
	Method       *hub.CloudToDeviceMethod `json:"method,omitempty"`
	Twin         *hub.Twin                `json:"twin,omitempty"`
	Condition    string                   `json:"condition"`
	Start        time.Time                `json:"start,omitzero"`
	MaxExecution time.Duration            `json:"max_execution"`
	Waves        string                   `json:"waves"`
	Bake         time.Duration            `json:"bake"`
	Failures     string                   `json:"failures,omitempty"`
	MinFinished  int                      `json:"min_finished,omitempty"`
	Scope        Scope                    `json:"scope,omitempty"`
	HealthQuery  string                   `json:"health_query,omitempty"`
	Health       string                   `json:"health,omitempty"`
	ApprovalOver int                      `json:"approval_over_devices,omitempty"`
	ApprovalWave []int                    `json:"approval_waves,omitempty"`
	Reason       string                   `json:"reason,omitempty"`
	WaitForSlot  bool                     `json:"wait_for_slot,omitempty"`
}

// text is the threshold as ParseThreshold reads it back.
func (t Threshold) text() string {
	switch t.kind {
	case percentThreshold:
		return formatBasisPoints(t.value) + "%"
	case countThreshold:
		return strconv.Itoa(t.value)
	}
	return ""
}

func encodeSpec(s Spec) ([]byte, error) {
	return json.Marshal(storedSpec{
		Hub: s.Hub, Type: s.Type, Method: s.Method, Twin: s.Twin, Condition: s.Condition,
		Start: s.Start.UTC(), MaxExecution: s.MaxExecution, Waves: s.Waves.String(), Bake: s.Bake,
		Failures: s.Rules.Failures.text(), MinFinished: s.Rules.MinFinished, Scope: s.Rules.Scope,
		HealthQuery: s.Rules.HealthQuery, Health: s.Rules.Health.text(),
		ApprovalOver: s.Rules.ApprovalOverDevices, ApprovalWave: s.Rules.ApprovalWaves,
		Reason: s.Reason, WaitForSlot: s.WaitForSlot,
	})
}

func decodeSpec(b []byte) (Spec, error) {
	var st storedSpec
	if err := json.Unmarshal(b, &st); err != nil {
		return Spec{}, fmt.Errorf("stored spec: %w", err)
	}
	waves, err := ParseWaves(st.Waves)
	if err != nil {
		return Spec{}, fmt.Errorf("stored spec: %w", err)
	}
	failures, err := ParseThreshold(st.Failures)
	if err != nil {
		return Spec{}, fmt.Errorf("stored spec: %w", err)
	}
	health, err := ParseThreshold(st.Health)
	if err != nil {
		return Spec{}, fmt.Errorf("stored spec: %w", err)
	}
	s := Spec{
		Hub: st.Hub, Type: st.Type, Method: st.Method, Twin: st.Twin, Condition: st.Condition,
		Start: st.Start, MaxExecution: st.MaxExecution, Waves: waves, Bake: st.Bake,
		Rules: Rules{Failures: failures, MinFinished: st.MinFinished, Scope: st.Scope,
			HealthQuery: st.HealthQuery, Health: health,
			ApprovalOverDevices: st.ApprovalOver, ApprovalWaves: st.ApprovalWave},
		Reason: st.Reason, WaitForSlot: st.WaitForSlot,
	}
	return s, nil
}

// request is the hub job a spec makes for one job of a wave.
func (s Spec) request(id, condition string, start time.Time) hub.JobRequest {
	req := hub.JobRequest{JobID: id, Type: s.Type, CloudToDeviceMethod: s.Method, UpdateTwin: s.Twin,
		QueryCondition: condition, MaxExecutionTimeInSeconds: int64(s.MaxExecution / time.Second)}
	if !start.IsZero() {
		req.StartTime = hub.Time{Time: start.UTC()}
	}
	return req
}
