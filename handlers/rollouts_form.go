package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hubjobs/hubjobs/auth"
	"github.com/hubjobs/hubjobs/hub"
	"github.com/hubjobs/hubjobs/rollout"
	"github.com/hubjobs/hubjobs/views"
)

// NewRollout serves GET /hubs/{hub}/rollouts/new: the "New job" form,
// blank, a copy of a job (?from_job=), a rerun on that job's failed devices
// (&devices=failed), or the devices a halted rollout never reached
// (?from_rollout=). It carries a fresh rollout id, so that sending it twice
// creates one rollout.
func (h *Handlers) NewRollout(c echo.Context) error {
	hb, err := h.hubParam(c)
	if err != nil {
		return err
	}
	q := c.QueryParams()
	f := views.RolloutForm{Hub: hb.Name, RID: rollout.NewID(), CSRFToken: auth.CSRFToken(c.Request().Context())}
	d := rollout.Draft{Type: rollout.DraftMethod, Waves: "100%"}
	switch {
	case q.Get("from_job") != "":
		d, f.Notice, f.NoticeKind, err = h.fromJob(c, hb, q.Get("from_job"), q.Get("devices"))
	case q.Get("from_rollout") != "":
		d, f.Notice, f.NoticeKind, err = h.fromRollout(c, hb, q.Get("from_rollout"))
	}
	if err != nil {
		return err
	}
	f.Values = draftValues(d)
	return h.renderForm(c, hb, http.StatusOK, f)
}

func (h *Handlers) renderForm(c echo.Context, hb *Hub, status int, f views.RolloutForm) error {
	return page(c, status, views.RolloutFormPage(h.layout(c, "New job on "+hb.Name, "rollouts", hb.Name), f), views.RolloutFormArticle(f))
}

// fromJob pre-fills the form from a job the hub has (or the portal's
// snapshot of a purged one): its change, condition and maximum execution
// time; with devices=failed, the condition names exactly the devices that
// failed in it.
func (h *Handlers) fromJob(c echo.Context, hb *Hub, id, devices string) (rollout.Draft, string, string, error) {
	if err := checkJobID(id); err != nil {
		return rollout.Draft{}, "", "", err
	}
	if devices != "" && devices != "all" && devices != "failed" {
		return rollout.Draft{}, "", "", badRequest("Bad device choice", "devices is all or failed.")
	}
	ctx := c.Request().Context()
	j, archived, err := h.readJob(ctx, hb, id)
	if err != nil {
		return rollout.Draft{}, "", "", err
	}
	d := draftOf(j)
	d.Reason = "Copy of job " + id
	notice := "Copied from job " + id + ": check every field before you create it."
	if devices != "failed" {
		return d, notice, "info", nil
	}
	d.Reason = "Rerun of job " + id + " on its failed devices"
	if archived {
		d.Condition = ""
		return d, "Job " + id + " is archived: IoT Hub no longer has its per-device results and this portal keeps none, so its failed devices cannot be listed. Write the condition yourself.", "error", nil
	}
	failed, err := h.failedDevices(ctx, hb, id)
	if err != nil {
		return rollout.Draft{}, "", "", err
	}
	cond, why := inCondition(failed.ids)
	if why != "" && failed.unread {
		why = "the query budget ran out after " + views.Count(failed.read) + " of its device results, and no failed device was among them. Try again in a minute, or write the condition yourself."
	}
	if why != "" {
		d.Condition = ""
		return d, "Job " + id + ": " + why, "error", nil
	}
	d.Condition = cond
	n := len(failed.ids)
	notice = "Rerun of job " + id + " on the " + views.Count(n) + " " + plural(n, "device", "devices") + " that failed in it."
	switch {
	case failed.leftOut > 0:
		return d, notice + " At least " + views.Count(failed.leftOut) + " more failed devices were left out: their ids do not fit in one hub condition (" +
			views.Count(rollout.MaxCondition) + " characters). Rerun again after this one, or target them with a condition on their tags.", "error", nil
	case failed.unread:
		return d, notice + " Only the first " + views.Count(failed.read) + " of its device results could be read before the query budget ran out: failed devices after them were left out.", "error", nil
	}
	return d, notice, "info", nil
}

// readJob is the job from the hub, else from the portal's snapshot
// (archived = true).
func (h *Handlers) readJob(ctx context.Context, hb *Hub, id string) (*hub.Job, bool, error) {
	fresh, err := hb.Jobs.GetJob(ctx, id)
	if err == nil {
		return fresh.Value, false, nil
	}
	if !errors.Is(err, hub.ErrNotFound) {
		return nil, false, err
	}
	snap, serr := h.audit.Snapshot(ctx, hb.Name, id)
	if serr != nil {
		return nil, false, err
	}
	var j hub.Job
	if json.Unmarshal(snap.Body, &j) != nil {
		return nil, false, err
	}
	return &j, true, nil
}

// failedList is what failedDevices found: the ids that fit in one hub
// condition, how many more failed devices it saw that did not (leftOut),
// and whether the query budget stopped it before the last page (unread,
// after read rows).
type failedList struct {
	ids     []string
	leftOut int
	read    int
	unread  bool
}

// failedDevices pages through the job's devices.jobs rows and keeps the
// ids that failed. The hub client has no status filter for devices.jobs
// (its query is fixed to the job id), so every row comes back; reading
// stops as soon as the IN-list would pass the hub's condition limit, since
// more ids cannot be used, and when the person's query share runs out
// after the first page, so that a large job yields what fits rather than
// a 503.
func (h *Handlers) failedDevices(ctx context.Context, hb *Hub, id string) (failedList, error) {
	var out failedList
	length := len("deviceId IN []")
	token := ""
	for {
		fresh, err := hb.Jobs.QueryDeviceJobs(ctx, id, hub.PageOptions{PageSize: deviceFetchSize, Continuation: token})
		if errors.Is(err, hub.ErrThrottled) && out.read > 0 {
			out.unread = true
			return out, nil
		}
		if err != nil {
			return failedList{}, err
		}
		for _, d := range fresh.Value.Devices {
			if d.Status.Normalized() != hub.DeviceStatusFailed {
				continue
			}
			grown := length + len(hub.QuoteString(d.DeviceID))
			if len(out.ids) > 0 {
				grown++ // the comma
			}
			if out.leftOut > 0 || grown > rollout.MaxCondition {
				out.leftOut++
				continue
			}
			out.ids, length = append(out.ids, d.DeviceID), grown
		}
		out.read += len(fresh.Value.Devices)
		if token = fresh.Value.Continuation; token == "" || out.leftOut > 0 {
			return out, nil
		}
	}
}

// inCondition is `deviceId IN [...]` naming ids with IoT Hub's escapes, or
// why it cannot be made.
func inCondition(ids []string) (string, string) {
	if len(ids) == 0 {
		return "", "no device failed in it, so there is nothing to rerun."
	}
	quoted := make([]string, len(ids))
	for i, id := range ids {
		quoted[i] = hub.QuoteString(id)
	}
	cond := "deviceId IN [" + strings.Join(quoted, ",") + "]"
	if len(cond) > rollout.MaxCondition {
		return "", views.Count(len(ids)) + " devices are listed, and their ids do not fit in one hub condition (" +
			views.Count(rollout.MaxCondition) + " characters). Target them with a condition on their tags instead."
	}
	return cond, ""
}

// fromRollout pre-fills the form with a rollout's change and the devices
// it never reached.
func (h *Handlers) fromRollout(c echo.Context, hb *Hub, rid string) (rollout.Draft, string, string, error) {
	if !rollout.ValidID(rid) {
		return rollout.Draft{}, "", "", badRequest("That is not a rollout id", "Rollout ids are 1 to 16 lowercase letters or digits.")
	}
	eng, err := h.engine()
	if err != nil {
		return rollout.Draft{}, "", "", err
	}
	ctx := c.Request().Context()
	r, err := eng.Get(ctx, hb.Name, rid)
	if err != nil {
		return rollout.Draft{}, "", "", err
	}
	remaining, err := eng.Remaining(ctx, hb.Name, rid)
	if err != nil {
		return rollout.Draft{}, "", "", err
	}
	d := draftOfSpec(r.Spec)
	d.Reason = "Continuation of rollout " + rid
	cond, why := inCondition(remaining)
	if why != "" {
		d.Condition = ""
		return d, "Rollout " + rid + ": " + strings.Replace(why, "no device failed in it", "every device was reached", 1), "error", nil
	}
	d.Condition = cond
	return d, "Continues rollout " + rid + " with the " + views.Count(len(remaining)) + " " + plural(len(remaining), "device", "devices") + " it never reached.", "info", nil
}

// draftOf is the form for a copy of j.
func draftOf(j *hub.Job) rollout.Draft {
	d := rollout.Draft{Condition: j.QueryCondition, Waves: "100%"}
	if j.MaxExecutionTimeInSeconds > 0 {
		d.MaxExecution = durationText(time.Duration(j.MaxExecutionTimeInSeconds) * time.Second)
	}
	fillChange(&d, j.CloudToDeviceMethod, j.UpdateTwin)
	return d
}

// draftOfSpec is the form for a spec (its change, rules and timing).
func draftOfSpec(s rollout.Spec) rollout.Draft {
	d := rollout.Draft{Condition: s.Condition, MaxExecution: durationText(s.MaxExecution), Waves: s.Waves.String(),
		Failures: thresholdText(s.Rules.Failures), Scope: string(s.Rules.Scope), HealthQuery: s.Rules.HealthQuery,
		HealthThreshold: thresholdText(s.Rules.Health)}
	if s.Bake > 0 {
		d.Bake = durationText(s.Bake)
	}
	if s.Rules.MinFinished > 0 {
		d.MinFinished = strconv.Itoa(s.Rules.MinFinished)
	}
	waves := make([]string, len(s.Rules.ApprovalWaves))
	for i, w := range s.Rules.ApprovalWaves {
		waves[i] = strconv.Itoa(w)
	}
	d.ApprovalWaves = strings.Join(waves, ",")
	fillChange(&d, s.Method, s.Twin)
	return d
}

// durationText is a duration as a person writes it in the form ("1h",
// "1h30m", "90s" stays "1m30s"), not Go's "1h0m0s"; the form parses both.
func durationText(d time.Duration) string {
	text := d.String()
	if t, ok := strings.CutSuffix(text, "m0s"); ok {
		text = t + "m"
	}
	if t, ok := strings.CutSuffix(text, "h0m"); ok {
		text = t + "h"
	}
	return text
}

// thresholdText is a threshold as the form takes it ("5%", "10").
func thresholdText(t rollout.Threshold) string {
	if !t.IsSet() {
		return ""
	}
	s := t.String()
	if p, ok := strings.CutSuffix(s, " %"); ok {
		return p + "%"
	}
	return strings.Fields(s)[0]
}

func fillChange(d *rollout.Draft, m *hub.CloudToDeviceMethod, t *hub.Twin) {
	switch {
	case m != nil:
		d.Type = rollout.DraftMethod
		d.Method, d.Payload = m.MethodName, prettyJSON(m.Payload)
		d.ResponseTimeout = strconv.Itoa(int(m.ResponseTimeoutInSeconds))
		d.ConnectTimeout = strconv.Itoa(int(m.ConnectTimeoutInSeconds))
	case t != nil:
		d.Type = rollout.DraftTwin
		d.Tags = prettyValue(t.Tags)
		if t.Properties != nil {
			d.Desired = prettyValue(t.Properties.Desired)
		}
	default:
		d.Type = rollout.DraftMethod
	}
}

// draftValues is a draft by form field name, for the form to show again.
func draftValues(d rollout.Draft) map[string]string {
	return map[string]string{
		rollout.FieldType: d.Type, rollout.FieldMethod: d.Method, rollout.FieldPayload: d.Payload,
		rollout.FieldResponseTimeout: d.ResponseTimeout, rollout.FieldConnectTimeout: d.ConnectTimeout,
		rollout.FieldTags: d.Tags, rollout.FieldDesired: d.Desired, rollout.FieldCondition: d.Condition,
		rollout.FieldStart: d.StartAt, rollout.FieldMaxExecution: d.MaxExecution, rollout.FieldWaves: d.Waves,
		rollout.FieldBake: d.Bake, rollout.FieldFailures: d.Failures, rollout.FieldMinFinished: d.MinFinished,
		rollout.FieldScope: d.Scope, rollout.FieldHealthQuery: d.HealthQuery, rollout.FieldHealth: d.HealthThreshold,
		rollout.FieldApprovalWaves: d.ApprovalWaves, rollout.FieldReason: d.Reason,
	}
}

// maxRolloutFormBytes bounds the form: a 128 KB payload and 40 KB of twin
// patch, percent-encoded (up to three bytes each), and the rest.
const maxRolloutFormBytes = 640 << 10

// rolloutForm reads the posted form from the request BODY only (never the
// URL's query), each field at most once, into a draft and the rollout id it
// was rendered with. It parses the raw bytes AuthorAuthorize kept, not
// r.PostForm: the CSRF check's parse keeps the values before a bad escape
// and reports no error, so a malformed body would otherwise pass.
func rolloutForm(c echo.Context) (rollout.Draft, string, error) {
	unreadable := badRequest("The form could not be read", "Send the form as the page does (URL-encoded).")
	r := c.Request()
	if mt, _, err := mime.ParseMediaType(r.Header.Get(echo.HeaderContentType)); err != nil || mt != echo.MIMEApplicationForm {
		return rollout.Draft{}, "", unreadable
	}
	kept, ok := c.Get(keptBodyKey).(keptBody)
	if !ok { // mounted without AuthorAuthorize
		kept = readBody(r.Body, maxRolloutFormBytes)
	}
	if kept.err != nil {
		return rollout.Draft{}, "", unreadable
	}
	form, err := url.ParseQuery(string(kept.body))
	if err != nil {
		return rollout.Draft{}, "", unreadable
	}
	for _, field := range append([]string{"rid", "wait_for_slot"}, views.FormFields...) {
		if len(form[field]) > 1 {
			return rollout.Draft{}, "", badRequest("The form is ambiguous", "The field \""+field+"\" was sent more than once.")
		}
	}
	d := rollout.Draft{
		Type: form.Get(rollout.FieldType), Method: form.Get(rollout.FieldMethod), Payload: form.Get(rollout.FieldPayload),
		ResponseTimeout: form.Get(rollout.FieldResponseTimeout), ConnectTimeout: form.Get(rollout.FieldConnectTimeout),
		Tags: form.Get(rollout.FieldTags), Desired: form.Get(rollout.FieldDesired), Condition: form.Get(rollout.FieldCondition),
		StartAt: form.Get(rollout.FieldStart), MaxExecution: form.Get(rollout.FieldMaxExecution), Waves: form.Get(rollout.FieldWaves),
		Bake: form.Get(rollout.FieldBake), Failures: form.Get(rollout.FieldFailures), MinFinished: form.Get(rollout.FieldMinFinished),
		Scope: form.Get(rollout.FieldScope), HealthQuery: form.Get(rollout.FieldHealthQuery), HealthThreshold: form.Get(rollout.FieldHealth),
		ApprovalWaves: form.Get(rollout.FieldApprovalWaves), Reason: form.Get(rollout.FieldReason),
		WaitForSlot: form.Get("wait_for_slot") == "1",
	}
	return d, form.Get("rid"), nil
}

// spec reads the draft for hb with the portal's approval setting.
func (h *Handlers) spec(hb *Hub, d rollout.Draft) (rollout.Spec, rollout.FieldErrors) {
	s, fe := d.Spec(hb.Name, h.now())
	s.Rules.ApprovalOverDevices = h.ro.ApprovalOverDevices
	return s, fe
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
