package hub

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// readFixture returns a file under testdata.
func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func answer(status int, header http.Header) *http.Response {
	if header == nil {
		header = http.Header{}
	}
	return &http.Response{StatusCode: status, Header: header}
}

var allSentinels = []error{ErrNotFound, ErrNotCancellable, ErrThrottled, ErrUnauthorized, ErrConflict, ErrUnavailable, ErrTimeout}

func TestNewErrorParsesEveryBodyFormat(t *testing.T) {
	tests := []struct {
		name   string
		status int
		header http.Header
		body   []byte
		want   Error
		is     []error // sentinels it must match; all others must not match
	}{
		{
			name:   "format A with header",
			status: 401,
			header: http.Header{"Iothub-Errorcode": {"IotHubUnauthorizedAccess"}, "X-Ms-Request-Id": {"3f0c9a1e-0000-4000-8000-000000000001"}},
			body:   readFixture(t, "errors/format_a_unauthorized_access.json"),
			want: Error{StatusCode: 401, Code: "IotHubUnauthorizedAccess", Message: "Unauthorized",
				TrackingID: "8d08ff1144d6450680295a10d760244f-G:9", RequestID: "3f0c9a1e-0000-4000-8000-000000000001"},
			is: []error{ErrUnauthorized},
		},
		{
			name:   "cancel of a running job, whatever the status",
			status: 400,
			body:   readFixture(t, "errors/format_a_cancel_running.json"),
			want: Error{StatusCode: 400, Code: "OperationNotAllowedInCurrentState",
				Message: "Job cannot be cancelled in 'Running' status.", TrackingID: "4a2ba4bfd6b84ac8a4bd4cc15ec2d0a1-G:3"},
			is: []error{ErrNotCancellable},
		},
		{
			name:   "cancel of a running job answered 405",
			status: 405,
			body:   readFixture(t, "errors/format_a_cancel_running.json"),
			want: Error{StatusCode: 405, Code: "OperationNotAllowedInCurrentState",
				Message: "Job cannot be cancelled in 'Running' status.", TrackingID: "4a2ba4bfd6b84ac8a4bd4cc15ec2d0a1-G:3"},
			is: []error{ErrNotCancellable},
		},
		{
			name:   "RBAC denial",
			status: 401,
			body:   readFixture(t, "errors/format_a_rbac.json"),
			want: Error{StatusCode: 401, Code: "IotHubUnauthorized",
				Message:    "Principal ops@contoso.com is not authorized for POST on /devices/query due to no assigned permissions",
				TrackingID: "0b4e7e51a0b94fa2a4b1e0f3f1f7b2a5-G:11"},
			is: []error{ErrUnauthorized},
		},
		{
			name:   "bad api-version",
			status: 400,
			body:   readFixture(t, "errors/format_a_invalid_protocol_version.json"),
			want: Error{StatusCode: 400, Code: "InvalidProtocolVersion", Message: "BadRequest",
				TrackingID: "6f5a3b8e0c1d4e2f9a7b6c5d4e3f2a1b-G:0"},
		},
		{
			name:   "format B: escaped JSON with a numeric code named from the table",
			status: 404,
			body:   readFixture(t, "errors/format_b_job_not_found.json"),
			want: Error{StatusCode: 404, Code: "JobNotFound", NumericCode: 404002, Message: "Job with id 'nightly-7' not found.",
				TrackingID: "c0a6b9e8f43a4a6f8f0f1b2c3d4e5f60-G:5"},
			is: []error{ErrNotFound},
		},
		{
			name:   "format B without Message wrapper, code as a string",
			status: 429,
			body:   []byte(`{"errorCode":"429004","trackingId":"t-1","message":"Too many active jobs"}`),
			want:   Error{StatusCode: 429, Code: "ThrottlingMaxActiveJobCountExceeded", NumericCode: 429004, Message: "Too many active jobs", TrackingID: "t-1"},
			is:     []error{ErrThrottled},
		},
		{
			name:   "nested throttling variant",
			status: 429,
			header: http.Header{"Retry-After": {"7"}},
			body:   readFixture(t, "errors/nested_throttling.json"),
			want: Error{StatusCode: 429, Code: "ThrottlingMaxActiveJobCountExceeded",
				TrackingID: "1f2e3d4c5b6a47389201a2b3c4d5e6f7-G:3", RetryAfter: 7 * time.Second},
			is: []error{ErrThrottled},
		},
		{
			name:   "header only",
			status: 409,
			header: http.Header{"Iothub-Errorcode": {"JobAlreadyExists"}, "X-Ms-Request-Id": {"r-9"}},
			want:   Error{StatusCode: 409, Code: "JobAlreadyExists", RequestID: "r-9"},
			is:     []error{ErrConflict},
		},
		{
			name:   "header wins over the body's code",
			status: 429,
			header: http.Header{"Iothub-Errorcode": {"ThrottlingException"}},
			body:   []byte(`{"Message":"ErrorCode:ServerError;x"}`),
			want:   Error{StatusCode: 429, Code: "ThrottlingException", Message: "x"},
			is:     []error{ErrThrottled},
		},
		{
			name:   "HTML page from a proxy",
			status: 411,
			header: http.Header{"Content-Type": {"text/html"}},
			body:   readFixture(t, "errors/proxy_length_required.html"),
			want:   Error{StatusCode: 411, Message: "non-JSON error page: Length Required"},
		},
		{
			name:   "HTML gateway error",
			status: 502,
			body:   []byte("<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"),
			want:   Error{StatusCode: 502, Message: "non-JSON error page: 502 Bad Gateway"},
			is:     []error{ErrUnavailable},
		},
		{
			name:   "truncated JSON",
			status: 500,
			body:   []byte(`{"Message":"ErrorCode:ServerError;bo`),
			want:   Error{StatusCode: 500, Message: `non-JSON error body: {"Message":"ErrorCode:ServerError;bo`},
			is:     []error{ErrUnavailable},
		},
		{
			name:   "JSON of unexpected types",
			status: 403,
			body:   []byte(`{"Message":42,"ExceptionMessage":null,"errorCode":"IotHubQuotaExceeded","trackingId":[1]}`),
			want:   Error{StatusCode: 403, Code: "IotHubQuotaExceeded"},
			is:     []error{ErrConflict},
		},
		{
			name:   "403 without a quota code",
			status: 403,
			want:   Error{StatusCode: 403},
			is:     []error{ErrUnauthorized},
		},
		{
			name:   "gateway timeout",
			status: 504,
			want:   Error{StatusCode: 504},
			is:     []error{ErrTimeout},
		},
		{
			name:   "empty body 404",
			status: 404,
			want:   Error{StatusCode: 404},
			is:     []error{ErrNotFound},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := newError("GetJob", answer(tt.status, tt.header), tt.body, time.Now())
			tt.want.Op = "GetJob"
			if *got != tt.want {
				t.Errorf("newError =\n %+v\nwant\n %+v", *got, tt.want)
			}
			for _, s := range allSentinels {
				want := false
				for _, w := range tt.is {
					want = want || w == s
				}
				if errors.Is(got, s) != want {
					t.Errorf("errors.Is(%v) = %v, want %v", s, !want, want)
				}
			}
		})
	}
}

func TestErrorTextIsPlainWords(t *testing.T) {
	e := newError("CancelJob", answer(400, http.Header{"X-Ms-Request-Id": {"req-1"}}),
		readFixture(t, "errors/format_a_cancel_running.json"), time.Now())
	want := "IoT Hub CancelJob failed: HTTP 400 OperationNotAllowedInCurrentState: Job cannot be cancelled in 'Running' status." +
		" [tracking ID 4a2ba4bfd6b84ac8a4bd4cc15ec2d0a1-G:3, request ID req-1]"
	if e.Error() != want {
		t.Errorf("Error() =\n %s\nwant\n %s", e.Error(), want)
	}
	bare := (&Error{Op: "GetJob", StatusCode: 503}).Error()
	if bare != "IoT Hub GetJob failed: HTTP 503 Service Unavailable" {
		t.Errorf("bare Error() = %s", bare)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"3", 3 * time.Second},
		{" 120 ", 2 * time.Minute},
		{"0", 0},
		{"-5", 0},
		{"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
		{"99999999999999999999", 0},
		{"9999999999", 365 * 24 * time.Hour},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestRetryAfterHint(t *testing.T) {
	if got := RetryAfterHint(&Error{RetryAfter: 3 * time.Second}); got != 3*time.Second {
		t.Errorf("hub error hint = %v", got)
	}
	if got := RetryAfterHint(&BudgetError{RetryAfter: time.Minute}); got != time.Minute {
		t.Errorf("budget error hint = %v", got)
	}
	if got := RetryAfterHint(errors.New("x")); got != 0 {
		t.Errorf("plain error hint = %v", got)
	}
}

// FuzzParseError: whatever a hub, a proxy or an attacker sends as an error
// body, parsing returns without panicking, and what it extracts is short,
// printable, single-line text fit for a page and a log line.
func FuzzParseError(f *testing.F) {
	for _, name := range []string{"format_a_unauthorized_access.json", "format_a_cancel_running.json", "format_b_job_not_found.json",
		"nested_throttling.json", "proxy_length_required.html"} {
		f.Add(readFixture(f, "errors/"+name))
	}
	f.Add([]byte(`{"Message":"{\"Message\":\"{\\\"errorCode\\\":1}\"}"}`))
	f.Add([]byte(`{"errorCode":-1,"code":"\u0000"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		e := newError("GetJob", answer(400, nil), body, time.Now())
		for field, s := range map[string]string{"Code": e.Code, "Message": e.Message, "TrackingID": e.TrackingID} {
			if len(s) > 310 || strings.ContainsAny(s, "\r\n\x00") || !utf8.ValidString(s) {
				t.Errorf("%s = %q: not short printable text", field, s)
			}
		}
		if e.NumericCode < 0 {
			t.Errorf("NumericCode = %d", e.NumericCode)
		}
		_ = e.Error()
	})
}
