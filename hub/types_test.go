package hub

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestParseTimeIsLenient(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
	}{
		{"2030-01-01T00:00:00.1234567Z", time.Date(2030, 1, 1, 0, 0, 0, 123456700, time.UTC)},
		{"2016-09-29T18:18:52.7418462", time.Date(2016, 9, 29, 18, 18, 52, 741846200, time.UTC)}, // no zone = UTC
		{"2017-07-11T23:55:12.0052Z", time.Date(2017, 7, 11, 23, 55, 12, 5200000, time.UTC)},
		{"2030-01-02T00:00:00Z", time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC)},
		{"2030-01-02T01:30:00+01:30", time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC)},
		{"2030-01-02 00:00:00", time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC)},
		{"0001-01-01T00:00:00", time.Time{}},
		{"0001-01-01T00:00:00Z", time.Time{}},
		{"", time.Time{}},
	}
	for _, tt := range tests {
		got, err := ParseTime(tt.in)
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
		if tt.want.IsZero() && !got.IsZero() {
			t.Errorf("ParseTime(%q).IsZero() = false", tt.in)
		}
	}
	for _, bad := range []string{"yesterday", "2030-13-01T00:00:00Z", "1700000000", "2030-01-01T00:00:00ZZ"} {
		if _, err := ParseTime(bad); !errors.Is(err, ErrBadTime) {
			t.Errorf("ParseTime(%q) err = %v, want ErrBadTime", bad, err)
		}
	}
}

func TestTimeJSON(t *testing.T) {
	var v struct {
		A Time `json:"a"`
		B Time `json:"b"`
		C Time `json:"c,omitzero"`
		D Time `json:"d"`
	}
	in := `{"a":"2016-09-29T18:18:52.7418462","b":null,"c":"0001-01-01T00:00:00","d":"2030-01-01T01:00:00.5+01:00"}`
	if err := json.Unmarshal([]byte(in), &v); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"a":"2016-09-29T18:18:52.7418462Z","b":null,"d":"2030-01-01T00:00:00.5000000Z"}`
	if string(out) != want {
		t.Errorf("marshal = %s\nwant      %s", out, want)
	}
	for _, bad := range []string{`{"a":17}`, `{"a":"noon"}`, `{"a":{}}`} {
		if err := json.Unmarshal([]byte(bad), &v); !errors.Is(err, ErrBadTime) {
			t.Errorf("Unmarshal(%s) err = %v, want ErrBadTime", bad, err)
		}
	}
}

// FuzzParseTime: any string either fails with ErrBadTime or yields a time
// that survives a trip through the wire layout at the wire's precision.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2030-01-01T00:00:00.1234567Z", "2016-09-29T18:18:52.7418462", "0001-01-01T00:00:00",
		"2030-01-02T01:30:00+01:30", "0000-01-01T00:00:00+23:59", "9999-12-31T23:59:59.9999999-23:59", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseTime(s)
		if err != nil {
			if !errors.Is(err, ErrBadTime) {
				t.Fatalf("ParseTime(%q) err = %v, not ErrBadTime", s, err)
			}
			return
		}
		b, err := json.Marshal(got)
		if err != nil {
			if y := got.UTC().Year(); y >= 0 && y <= 9999 {
				t.Fatalf("Marshal(%v) = %v", got, err)
			}
			return // a zone offset pushed the year out of range: refused, not garbled
		}
		var back Time
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("re-parse of %s: %v", b, err)
		}
		if want := got.Truncate(100 * time.Nanosecond); !back.Equal(want) && !(back.IsZero() && want.IsZero()) {
			t.Fatalf("round trip %q -> %s -> %v, want %v", s, b, back, want)
		}
	})
}

func TestStatusesAndTypesAreLenient(t *testing.T) {
	var j struct {
		Status JobStatus       `json:"status"`
		Type   JobType         `json:"type"`
		Device DeviceJobStatus `json:"device"`
	}
	tests := []struct {
		in     string
		status JobStatus
		typ    JobType
		device DeviceJobStatus
	}{
		{`{"status":"cancelled","type":"scheduleUpdateTwin","device":"canceled"}`, StatusCancelled, TypeScheduleUpdateTwin, DeviceStatusCanceled},
		{`{"status":"canceled","type":"ScheduleDeviceMethod","device":"cancelled"}`, StatusCancelled, TypeScheduleDeviceMethod, DeviceStatusCanceled},
		{`{"status":"Queued","type":"unknown","device":"queued"}`, StatusQueued, TypeUnknown, DeviceStatusPending},
		{`{"status":"scheduled","device":"Scheduled"}`, StatusScheduled, "", DeviceStatusScheduled},
		{`{"status":"paused","type":"firmwareRollout","device":"throttled"}`, "paused", "firmwareRollout", "throttled"},
		{`{"status":null,"type":null,"device":null}`, "", "", ""},
	}
	for _, tt := range tests {
		j.Status, j.Type, j.Device = "", "", ""
		if err := json.Unmarshal([]byte(tt.in), &j); err != nil {
			t.Fatalf("%s: %v", tt.in, err)
		}
		if j.Status != tt.status || j.Type != tt.typ || j.Device != tt.device {
			t.Errorf("%s decoded to %q %q %q", tt.in, j.Status, j.Type, j.Device)
		}
	}
	if err := json.Unmarshal([]byte(`{"status":3}`), &j); err == nil {
		t.Error("a numeric status decoded without error")
	}
	if JobStatus("paused").Known() || !JobStatus("Cancelled").Known() {
		t.Error("Known() misclassifies")
	}
}

func TestFixturesDecode(t *testing.T) {
	var done Job
	mustDecode(t, "wire/job_completed_twin.json", &done)
	if done.Status != StatusCompleted || done.Type != TypeScheduleUpdateTwin || done.absent() ||
		done.DeviceJobStatistics.SucceededCount != 2 || done.UpdateTwin.ETag != "*" || done.UpdateTwin.Tags["ring"] != "2" ||
		done.EndTime.Sub(done.StartTime.Time) != 5*time.Second+641975400 {
		t.Errorf("completed twin job decoded as %+v", done)
	}
	if got := done.PlannedEnd(); !got.Equal(done.StartTime.Add(300 * time.Second)) {
		t.Errorf("PlannedEnd = %v", got)
	}

	var cancelled Job
	mustDecode(t, "wire/job_cancelled_method.json", &cancelled)
	if cancelled.Status != StatusCancelled || cancelled.CloudToDeviceMethod.MethodName != "reboot" ||
		string(cancelled.CloudToDeviceMethod.Payload) != `{"delay":5}` || !cancelled.EndTime.IsZero() {
		t.Errorf("cancelled method job decoded as %+v", cancelled)
	}

	var created Job
	mustDecode(t, "wire/create_response.json", &created)
	if created.JobID != "job01" || created.Status != StatusQueued || created.absent() {
		t.Errorf("create response decoded as %+v", created)
	}

	var unknown Job
	mustDecode(t, "wire/job_unknown.json", &unknown)
	if !unknown.absent() {
		t.Error("200 {type:unknown,status:unknown} is not treated as absent")
	}

	var newer Job
	mustDecode(t, "wire/job_newer_hub.json", &newer)
	if newer.Type != "firmwareRollout" || newer.Status != "Paused" || newer.absent() || !newer.StartTime.IsZero() ||
		newer.CreatedTime.Nanosecond() != 123456700 || newer.PlannedEnd() != (time.Time{}) || newer.ParentJobID != "fw" {
		t.Errorf("job from a newer hub decoded as %+v", newer)
	}

	var jobs []Job
	mustDecode(t, "wire/query_jobs_page.json", &jobs)
	if len(jobs) != 2 || jobs[1].Status != StatusRunning {
		t.Errorf("query page decoded as %+v", jobs)
	}

	var devices []DeviceJob
	mustDecode(t, "wire/device_jobs_page.json", &devices)
	want := []DeviceJobStatus{DeviceStatusCompleted, DeviceStatusFailed, DeviceStatusCanceled, DeviceStatusCanceled, DeviceStatusPending}
	for i, d := range devices {
		if d.Status != want[i] {
			t.Errorf("device %s status %q, want %q", d.DeviceID, d.Status, want[i])
		}
	}
	if d := devices[0]; d.Outcome.DeviceMethodResponse.Status != 200 || d.JobType != TypeScheduleDeviceMethod {
		t.Errorf("device record decoded as %+v", d)
	}
	if d := devices[1]; d.Error.Code != "JobRunPreconditionFailed" || !d.CreatedDateTimeUtc.IsZero() ||
		d.EndTimeUtc.Sub(d.StartTimeUtc.Time) != 100*time.Second {
		t.Errorf("failed device decoded as %+v", d)
	}
	if devices[2].Outcome == nil || devices[2].Outcome.DeviceMethodResponse != nil {
		t.Errorf("twin outcome decoded as %+v", devices[2].Outcome)
	}
}

func mustDecode(t *testing.T, fixture string, v any) {
	t.Helper()
	if err := json.Unmarshal(readFixture(t, fixture), v); err != nil {
		t.Fatalf("%s: %v", fixture, err)
	}
}

func TestJobRequestMarshalsWireNames(t *testing.T) {
	req := JobRequest{
		JobID: "reboot-42", Type: TypeScheduleDeviceMethod, QueryCondition: "deviceId IN ['d1','d2']",
		CloudToDeviceMethod:       &CloudToDeviceMethod{MethodName: "reboot", Payload: json.RawMessage(`{"delay":5}`), ResponseTimeoutInSeconds: 30},
		StartTime:                 Time{time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)},
		MaxExecutionTimeInSeconds: 3600,
	}
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"jobId":"reboot-42","type":"scheduleDeviceMethod","cloudToDeviceMethod":{"methodName":"reboot","payload":{"delay":5},"responseTimeoutInSeconds":30},"queryCondition":"deviceId IN ['d1','d2']","startTime":"2030-01-01T00:00:00.0000000Z","maxExecutionTimeInSeconds":3600}`
	if string(b) != want {
		t.Errorf("JobRequest JSON =\n %s\nwant\n %s", b, want)
	}
}
