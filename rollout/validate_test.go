package rollout

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hubjobs/hubjobs/hub"
)

var now = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

func TestDraftSpecReadsAValidForm(t *testing.T) {
	d := Draft{Type: DraftTwin, Tags: `{"ring":"canary"}`, Desired: `{"fw":{"version":"2.1"}}`, Condition: " tags.site = 'paris' ",
		StartAt: "2026-03-10T14:30+01:00", MaxExecution: "90m", Waves: "10,25%", Bake: "30m", Failures: "5%", MinFinished: "20",
		Scope: "cumulative", HealthQuery: "properties.reported.fw.state = 'error'", HealthThreshold: "2", ApprovalWaves: "3, 2,2", Reason: "fw 2.1\nticket OPS-7"}
	s, fe := d.Spec("prod", now)
	if len(fe) != 0 {
		t.Fatalf("a valid draft has problems: %v", fe)
	}
	if s.Type != hub.TypeScheduleUpdateTwin || s.Twin.ETag != "*" || s.Twin.Tags["ring"] != "canary" || s.Twin.Properties.Desired["fw"] == nil {
		t.Errorf("twin %+v", s.Twin)
	}
	if !s.Start.Equal(time.Date(2026, 3, 10, 13, 30, 0, 0, time.UTC)) || s.MaxExecution != 90*time.Minute || s.Bake != 30*time.Minute {
		t.Errorf("start %v, max execution %v, bake %v", s.Start, s.MaxExecution, s.Bake)
	}
	if s.Condition != "tags.site = 'paris'" || s.Waves.String() != "10,25%,100%" {
		t.Errorf("condition %q, waves %s", s.Condition, s.Waves)
	}
	r := s.Rules
	if r.Failures.String() != "5 %" || r.MinFinished != 20 || r.Scope != Cumulative || r.Health.String() != "2 devices" || len(r.ApprovalWaves) != 2 || r.ApprovalWaves[0] != 2 {
		t.Errorf("rules %+v", r)
	}
	m, fe := Draft{Type: DraftMethod, Method: "reboot", Payload: " { \"delay\" : 5 } ", Condition: "*"}.Spec("prod", now)
	if len(fe) != 0 || string(m.Method.Payload) != `{"delay":5}` || m.Method.ResponseTimeoutInSeconds != 30 || m.Method.ConnectTimeoutInSeconds != 0 ||
		m.MaxExecution != DefaultMaxExecution || !m.Start.IsZero() || m.Waves.Waves() != 1 {
		t.Errorf("defaults: %+v %+v %v", m, m.Method, fe)
	}
}

func TestDraftSpecNamesEveryBadField(t *testing.T) {
	deep := strings.Repeat(`{"a":`, 11) + "1" + strings.Repeat("}", 11)
	cases := []struct {
		draft Draft
		field string
		want  string
	}{
		{Draft{Type: "x", Condition: "*"}, FieldType, "direct method or a twin update"},
		{Draft{Type: DraftMethod, Condition: "*"}, FieldMethod, "is needed"},
		{Draft{Type: DraftMethod, Method: "a b", Condition: "*"}, FieldMethod, "without spaces"},
		{Draft{Type: DraftMethod, Method: "m", Payload: "{", Condition: "*"}, FieldPayload, "not valid JSON"},
		{Draft{Type: DraftMethod, Method: "m", Payload: `"` + strings.Repeat("x", MaxPayloadBytes) + `"`, Condition: "*"}, FieldPayload, "128 KB"},
		{Draft{Type: DraftMethod, Method: "m", ResponseTimeout: "301", Condition: "*"}, FieldResponseTimeout, "5 and 300"},
		{Draft{Type: DraftMethod, Method: "m", ConnectTimeout: "-1", Condition: "*"}, FieldConnectTimeout, "0 and 300"},
		{Draft{Type: DraftTwin, Condition: "*"}, FieldDesired, "needs tags or desired"},
		{Draft{Type: DraftTwin, Tags: "[1]", Condition: "*"}, FieldTags, "not a JSON object"},
		{Draft{Type: DraftTwin, Tags: `{"t":"` + strings.Repeat("x", MaxTagsBytes) + `"}`, Condition: "*"}, FieldTags, "8 KB"},
		{Draft{Type: DraftTwin, Desired: deep, Condition: "*"}, FieldDesired, "11 levels"},
		{Draft{Type: DraftMethod, Method: "m", Condition: "a = \x01"}, FieldCondition, "not text"},
		{Draft{Type: DraftMethod, Method: "m", Condition: "*", StartAt: "2026-03-10T11:58:59"}, FieldStart, "in the past"},
		{Draft{Type: DraftMethod, Method: "m", Condition: "*", MaxExecution: "49h"}, FieldMaxExecution, "48 hours"},
		{Draft{Type: DraftMethod, Method: "m", Condition: "*", MaxExecution: "5ns"}, FieldMaxExecution, "is a duration"},
		{Draft{Type: DraftMethod, Method: "m", Condition: "*", Waves: "50%,10%"}, FieldWaves, "must be larger than 50%"},
		{Draft{Type: DraftMethod, Method: "m", Condition: "*", HealthQuery: "x = 1"}, FieldHealth, "is needed with a health query"},
		{Draft{Type: DraftMethod, Method: "m", Condition: "*", ApprovalWaves: "two"}, FieldApprovalWaves, "not a wave number"},
		{Draft{Type: DraftMethod, Method: "m", Condition: "*", Reason: "a\x00b"}, FieldReason, "control characters"},
	}
	for _, tc := range cases {
		_, fe := tc.draft.Spec("prod", now)
		if got := fe[tc.field]; !strings.Contains(got, tc.want) {
			t.Errorf("%s: %q, want it to say %q (all: %v)", tc.field, got, tc.want, fe)
		}
		if err := fe.Err(); !errors.Is(err, ErrInvalidSpec) {
			t.Errorf("%s: the problems are not an ErrInvalidSpec: %v", tc.field, err)
		}
	}
	if _, fe := (Draft{Type: DraftMethod, Method: "m", Condition: "*", StartAt: "2026-03-10T11:59:30"}).Spec("prod", now); len(fe) != 0 {
		t.Errorf("a start within the minute's slack is refused: %v", fe)
	}
}

func TestSpecValidateChecksWhatTheEngineIsGiven(t *testing.T) {
	s := Spec{Type: hub.TypeScheduleDeviceMethod, Method: &hub.CloudToDeviceMethod{MethodName: "m", ResponseTimeoutInSeconds: 30},
		Condition: "*", MaxExecution: time.Hour, Rules: Rules{Failures: Percent(150)}}
	fe := s.Validate()
	if len(fe) != 1 || !strings.Contains(fe[FieldFailures], "at most 100") {
		t.Errorf("Validate = %v", fe)
	}
	if !strings.Contains(fe.Error(), "failures: ") {
		t.Errorf("error text %q", fe.Error())
	}
}
