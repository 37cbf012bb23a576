package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/hub"
	"github.com/hubjobs/hubjobs/rollout"
)

// Describe is the one place an error becomes a status: the contract's codes.
func TestDescribeMapsErrorsToTheContractsStatuses(t *testing.T) {
	hubErr := func(status int, code string) error {
		return fmt.Errorf("get job: %w", &hub.Error{Op: "GetJob", StatusCode: status, Code: code, TrackingID: "trk-1", Message: "<b>x</b>"})
	}
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{badRequest("x", "y"), 400, ""},
		{hub.ErrInvalidJobID, 400, ""},
		{hubErr(404, "JobNotFound"), 404, "JobNotFound"},
		{hubErr(405, "OperationNotAllowedInCurrentState"), 409, "OperationNotAllowedInCurrentState"},
		{hubErr(429, "ThrottlingException"), 503, "ThrottlingException"},
		{&hub.BudgetError{Hub: "prod", Op: "GetJob", RetryAfter: 3 * time.Second}, 503, ""},
		// The breaker is open: nothing was sent, try again after its pause.
		{fmt.Errorf("x: %w", &hub.BreakerError{Hub: "prod", Op: "CancelJob", Failures: 5, RetryAfter: 20 * time.Second}), 503, ""},
		{hubErr(503, "ServiceUnavailable"), 502, "ServiceUnavailable"},
		{hubErr(504, "GatewayTimeout"), 504, "GatewayTimeout"},
		{fmt.Errorf("x: %w", hub.ErrTimeout), 504, ""},
		{fmt.Errorf("x: %w", hub.ErrOutcomeUnknown), 504, ""},
		{hubErr(401, "IotHubUnauthorizedAccess"), 502, "IotHubUnauthorizedAccess"},
		// A hub refusal the portal has no words for is still the hub's answer, not a portal bug.
		{hubErr(400, "ArgumentInvalid"), 502, "ArgumentInvalid"},
		{fmt.Errorf("x: %w", hub.ErrInvalidRequest), 400, ""},
		{fmt.Errorf("x: %w", audit.ErrUnavailable), 503, ""},
		{echo.ErrNotFound, 404, ""},
		{echo.ErrMethodNotAllowed, 405, ""},
		{echo.ErrStatusRequestEntityTooLarge, 413, ""},
		{context.Canceled, 499, ""},
		{errors.New("boom"), 500, ""},
		// The rollout engine's refusals are the person's to act on, not portal bugs.
		{fmt.Errorf("approve: %w", rollout.ErrUnknownApprover), 403, ""},
		{fmt.Errorf("rollout abc keeps changing: %w", rollout.ErrStale), 409, ""},
		{fmt.Errorf("create abc: %w", rollout.ErrIDTaken), 409, ""},
	} {
		p := Describe(tc.err)
		if p.Status != tc.status || p.HubCode != tc.code || p.Title == "" {
			t.Errorf("Describe(%v) = %d %q %q, want %d %q", tc.err, p.Status, p.HubCode, p.Title, tc.status, tc.code)
		}
		if p.Status == http.StatusServiceUnavailable && p.RetryAfter <= 0 {
			t.Errorf("Describe(%v): 503 without Retry-After", tc.err)
		}
		if tc.code != "" && p.TrackingID != "trk-1" {
			t.Errorf("Describe(%v) lost the tracking id", tc.err)
		}
	}
}

func TestActiveJobLimitFromThrottle(t *testing.T) {
	for msg, want := range map[string]int{"Maximum number of active jobs is 5": 5, "too many": -1} {
		err := &hub.Error{StatusCode: 429, Code: "ThrottlingMaxActiveJobCountExceeded", Message: msg}
		if got := activeJobLimit(err); got != want {
			t.Errorf("activeJobLimit(%q) = %d, want %d", msg, got, want)
		}
	}
	if activeJobLimit(&hub.Error{StatusCode: 429, Code: "ThrottlingException", Message: "5"}) != 0 {
		t.Error("another throttle is not the active-job limit")
	}
}

func TestSafeCSVDefusesFormulas(t *testing.T) {
	got := safeCSV([]string{"=cmd|' /C calc'!A0", "+1", "-2", "@SUM(A1)", "\tx", "device-1", ""})
	want := []string{"'=cmd|' /C calc'!A0", "'+1", "'-2", "'@SUM(A1)", "'\tx", "device-1", ""}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("cell %d = %q, want %q", i, got[i], want[i])
		}
	}
}

// Stale data says why it is stale: the portal holding back, or the hub
// failing with the code and tracking id Azure support asks for.
func TestStaleReasonTellsBudgetFromHubTrouble(t *testing.T) {
	for _, tc := range []struct {
		name       string
		err        error
		hubFailing bool
		words      []string
	}{
		{"budget", &hub.BudgetError{Hub: "prod", Op: "GetJob", RetryAfter: time.Second}, false, []string{"pausing its calls"}},
		{"throttled", fmt.Errorf("x: %w", &hub.Error{StatusCode: 429, Code: "ThrottlingException", TrackingID: "trk-9"}), true,
			[]string{"limiting requests", "ThrottlingException", "trk-9"}},
		{"timeout", fmt.Errorf("x: %w", hub.ErrTimeout), true, []string{"did not answer in time"}},
		{"unreachable", fmt.Errorf("x: %w", hub.ErrUnavailable), true, []string{"could not be reached"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			why, failing := staleReason(tc.err)
			if failing != tc.hubFailing {
				t.Errorf("hubFailing = %v, want %v", failing, tc.hubFailing)
			}
			for _, w := range tc.words {
				if !strings.Contains(why, w) {
					t.Errorf("why = %q, want it to contain %q", why, w)
				}
			}
		})
	}
}

// "Try again" is offered only for failures that may pass, and only as a
// link to this same site.
func TestTryAgainOnlyForRetryableLocalGETs(t *testing.T) {
	for _, tc := range []struct {
		method, target string
		status         int
		want           bool
	}{
		{http.MethodGet, "/hubs/prod/jobs/j1", 503, true},
		{http.MethodGet, "/hubs/prod/jobs?status=running", 502, true},
		{http.MethodGet, "/hubs/prod/jobs/j1", 504, true},
		{http.MethodGet, "/hubs/prod/jobs/nope", 404, false},
		{http.MethodPost, "/hubs/prod/jobs/j1/cancel", 503, false},
		{http.MethodGet, "//evil.example/x", 503, false},
	} {
		r := httptest.NewRequest(tc.method, tc.target, nil)
		w := httptest.NewRecorder()
		RenderProblem(w, r, Frame{Version: "dev"}, &Problem{Status: tc.status, Title: "t"})
		if got := strings.Contains(w.Body.String(), `id="try-again"`); got != tc.want {
			t.Errorf("%s %s → %d: try again offered = %v, want %v", tc.method, tc.target, tc.status, got, tc.want)
		}
	}
}
