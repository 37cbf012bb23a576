package handlers

import (
	"bytes"
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/hub"
	"github.com/hubjobs/hubjobs/jobs"
	"github.com/hubjobs/hubjobs/views"
)

// Per-device results come only from SELECT * FROM devices.jobs, which pages
// in hub order. To list failed devices first the portal reads up to
// deviceFetchPages pages and sorts them; the hub decides how many rows a
// page holds whatever is asked (the simulator gives 100), so that is between
// a few hundred and deviceReadLimit rows. A job with more devices says so
// and offers the CSV, which reads up to deviceExportLimit rows. Pages are
// few because IoT Hub allows only about 20 queries a minute.
const (
	devicePageSize    = 50
	deviceFetchSize   = 1000
	deviceFetchPages  = 5
	deviceReadLimit   = deviceFetchSize * deviceFetchPages
	deviceExportLimit = 100_000
)

// statusOrder puts what needs attention first.
var statusOrder = map[hub.DeviceJobStatus]int{
	hub.DeviceStatusFailed: 0, hub.DeviceStatusRunning: 1, hub.DeviceStatusPending: 2,
	hub.DeviceStatusScheduled: 3, hub.DeviceStatusCanceled: 4, "cancelled": 4, hub.DeviceStatusCompleted: 5,
}

func rank(s hub.DeviceJobStatus) int {
	if r, ok := statusOrder[s]; ok {
		return r
	}
	return 3
}

// Devices serves GET /hubs/{hub}/jobs/{id}/devices?offset=N: the #devices
// fragment for htmx, a page of its own otherwise.
func (h *Handlers) Devices(c echo.Context) error {
	hb, id, err := h.jobTarget(c)
	if err != nil {
		return err
	}
	offset := 0
	if o := c.QueryParam("offset"); o != "" {
		if offset, err = strconv.Atoi(o); err != nil || offset < 0 || offset > deviceReadLimit {
			return badRequest("Bad page", "The device page offset is not valid; start from the first page.")
		}
	}
	filter := c.QueryParam("status")
	if filter != "" && !knownDeviceStatus(filter) {
		return badRequest("Bad device status", "Filter devices by one of: failed, running, pending, scheduled, canceled, completed.")
	}
	ctx := c.Request().Context()
	devices, fresh, truncated, err := h.readDevices(ctx, hb, id)
	if err != nil {
		return err
	}
	slices.SortStableFunc(devices, func(a, b hub.DeviceJob) int {
		return cmp.Or(cmp.Compare(rank(a.Status), rank(b.Status)), cmp.Compare(a.DeviceID, b.DeviceID))
	})
	m := views.DevicePage{Hub: hb.Name, JobID: id, Offset: offset, Total: len(devices), PageSize: devicePageSize,
		Status: filter, Truncated: truncated, Counts: map[string]int{}, StatusLabels: deviceStatusLabels, Freshness: fresh}
	var shown []hub.DeviceJob
	for _, d := range devices {
		status := deviceStatus(d)
		m.Counts[status]++
		if d.Status == hub.DeviceStatusFailed {
			m.FailedIDs = append(m.FailedIDs, d.DeviceID)
		}
		if filter == "" || status == filter {
			shown = append(shown, d)
		}
	}
	m.Matching = len(shown)
	m.Failures = failureKinds(devices)
	end := min(offset+devicePageSize, len(shown))
	for _, d := range shown[min(offset, len(shown)):end] {
		m.Devices = append(m.Devices, deviceView(d))
	}
	return page(c, http.StatusOK, views.DevicesFullPage(h.layout(c, "Devices of "+id, "jobs", hb.Name), m), views.Devices(m))
}

// failureKinds groups failed devices by why they failed: the hub's error
// code, else the status their method answered. Most common first, so the
// page can say "52 × method answered 500, 25 × JobRunPreconditionFailed".
func failureKinds(devices []hub.DeviceJob) []views.FailureKind {
	counts := map[string]int{}
	for _, d := range devices {
		if d.Status != hub.DeviceStatusFailed {
			continue
		}
		label := "no reason reported"
		switch {
		case d.Error != nil && d.Error.Code != "":
			label = d.Error.Code
		case d.Outcome != nil && d.Outcome.DeviceMethodResponse != nil:
			label = "method answered " + strconv.Itoa(d.Outcome.DeviceMethodResponse.Status)
		}
		counts[label]++
	}
	out := make([]views.FailureKind, 0, len(counts))
	for label, n := range counts {
		out = append(out, views.FailureKind{Label: label, Count: n})
	}
	slices.SortFunc(out, func(a, b views.FailureKind) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Label, b.Label))
	})
	return out
}

// deviceStatus is a row's status with the hub's two spellings of
// "cancelled" folded into the device one ("canceled").
func deviceStatus(d hub.DeviceJob) string {
	if d.Status == "cancelled" {
		return string(hub.DeviceStatusCanceled)
	}
	return string(d.Status)
}

// knownDeviceStatus: the ?status= filter takes the hub's device statuses only.
func knownDeviceStatus(s string) bool {
	_, ok := statusOrder[hub.DeviceJobStatus(s)]
	return ok && s != "cancelled"
}

// readDevices reads up to deviceReadLimit per-device rows through the budget.
// A failure after the first page keeps what was read and marks it truncated.
func (h *Handlers) readDevices(ctx context.Context, hb *Hub, id string) ([]hub.DeviceJob, views.Age, bool, error) {
	var all []hub.DeviceJob
	var age views.Age
	token := ""
	for page := range deviceFetchPages {
		fresh, err := hb.Jobs.QueryDeviceJobs(ctx, id, hub.PageOptions{PageSize: deviceFetchSize, Continuation: token})
		if err != nil {
			if page == 0 {
				return nil, age, false, err
			}
			h.log.WarnContext(ctx, "device results cut short", "hub", hb.Name, "job", id, "err", err)
			return all, age, true, nil
		}
		if fresh.Stale || page == 0 {
			age = freshness(h, fresh)
		}
		all = append(all, fresh.Value.Devices...)
		if token = fresh.Value.Continuation; token == "" {
			return all, age, false, nil
		}
	}
	return all, age, true, nil
}

// deviceStatusLabels are the per-device statuses in the jobs vocabulary's
// words (views only read the map).
var deviceStatusLabels = func() map[string]string {
	labels := map[string]string{}
	for _, s := range []hub.DeviceJobStatus{hub.DeviceStatusPending, hub.DeviceStatusScheduled, hub.DeviceStatusRunning,
		hub.DeviceStatusCompleted, hub.DeviceStatusFailed, hub.DeviceStatusCanceled} {
		labels[string(s)] = jobs.StatusLabel(string(s))
	}
	return labels
}()

func deviceView(d hub.DeviceJob) views.Device {
	v := views.Device{ID: d.DeviceID, Status: string(d.Status), StatusLabel: jobs.StatusLabel(string(d.Status)), Started: d.StartTimeUtc.Time, Ended: d.EndTimeUtc.Time,
		LastUpdated: d.LastUpdatedDateTimeUtc.Time}
	if d.Error != nil {
		v.ErrorCode, v.ErrorDescription = d.Error.Code, d.Error.Description
	}
	if d.Outcome != nil && d.Outcome.DeviceMethodResponse != nil {
		r := d.Outcome.DeviceMethodResponse
		v.HasResponse, v.ResponseStatus, v.ResponsePayload = true, r.Status, compactJSON(r.Payload)
	}
	return v
}

func compactJSON(raw json.RawMessage) string {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return ""
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return string(raw)
	}
	return buf.String()
}

var deviceCSVColumns = []string{"device_id", "status", "start_time_utc", "end_time_utc", "last_updated_utc",
	"error_code", "error_description", "response_status", "response_payload"}

// exportProgressDeadline is how long a device export may go without
// finishing a page (waiting for the hub's query budget included).
const exportProgressDeadline = 3 * time.Minute

// DevicesCSV serves GET /hubs/{hub}/jobs/{id}/devices.csv: every device
// result the hub has, up to deviceExportLimit, streamed in hub order page by
// page. Cells are defused against spreadsheet formula injection.
func (h *Handlers) DevicesCSV(c echo.Context) error {
	hb, id, err := h.jobTarget(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	fresh, err := hb.Jobs.QueryDeviceJobs(ctx, id, hub.PageOptions{PageSize: deviceFetchSize})
	if err != nil {
		return err // nothing written yet: a proper error page
	}
	w := c.Response()
	w.Header().Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	w.Header().Set(echo.HeaderContentDisposition, `attachment; filename="`+hb.Name+"-"+id+`-devices.csv"`)
	w.WriteHeader(http.StatusOK)
	// IoT Hub allows few device queries a minute, so a large export takes
	// longer than the server's write timeout. Each page fetched extends the
	// deadline: the download lives as long as it makes progress.
	rc := http.NewResponseController(w)
	extend := func() { _ = rc.SetWriteDeadline(time.Now().Add(exportProgressDeadline)) }
	extend()
	cw := csv.NewWriter(w)
	cw.Write(deviceCSVColumns)
	rows := 0
	for {
		for _, d := range fresh.Value.Devices {
			if rows == deviceExportLimit {
				cw.Write([]string{"", "export truncated at " + strconv.Itoa(deviceExportLimit) + " rows"})
				cw.Flush()
				return cw.Error()
			}
			cw.Write(safeCSV(deviceRow(d)))
			rows++
		}
		cw.Flush()
		token := fresh.Value.Continuation
		if token == "" {
			return cw.Error()
		}
		// Send this page before waiting for the next (a gzip-ing writer
		// would otherwise hold its tail for up to exportWaitLimit).
		_ = rc.Flush()
		extend()
		if fresh, err = h.nextDevicePage(ctx, hb, id, token); err != nil {
			h.log.WarnContext(ctx, "device export cut short", "hub", hb.Name, "job", id, "err", err)
			cw.Write([]string{"", "export incomplete: " + Describe(err).Title})
			cw.Flush()
			return cw.Error()
		}
	}
}

// exportWaitLimit is how long one export page may wait for the hub budget.
const exportWaitLimit = 15 * time.Second

// nextDevicePage reads a further export page. The export reads many pages
// in a row, which the budget's query bucket does not allow at once; rather
// than cut the file short, it waits for the bucket (bounded) and tries again.
func (h *Handlers) nextDevicePage(ctx context.Context, hb *Hub, id, token string) (hub.Fresh[*hub.DevicesPage], error) {
	for {
		fresh, err := hb.Jobs.QueryDeviceJobs(ctx, id, hub.PageOptions{PageSize: deviceFetchSize, Continuation: token})
		wait := hub.RetryAfterHint(err)
		if err == nil || !errors.Is(err, hub.ErrThrottled) || wait <= 0 || wait > exportWaitLimit {
			return fresh, err
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return fresh, ctx.Err()
		}
	}
}

func deviceRow(d hub.DeviceJob) []string {
	v := deviceView(d)
	status := ""
	if v.HasResponse {
		status = strconv.Itoa(v.ResponseStatus)
	}
	return []string{v.ID, v.Status, csvTime(v.Started), csvTime(v.Ended), csvTime(v.LastUpdated),
		v.ErrorCode, v.ErrorDescription, status, v.ResponsePayload}
}

func csvTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// safeCSV neutralises every cell of a device row against spreadsheet
// formulas, with the rule the audit export uses (audit.NeutralizeCSVCell):
// device ids, error descriptions and payloads are the hub's and the
// devices' text.
func safeCSV(row []string) []string {
	for i, v := range row {
		row[i] = audit.NeutralizeCSVCell(v)
	}
	return row
}
