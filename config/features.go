package config

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/hubjobs/hubjobs/notify"
)

// Validation of the keys that configure staged rollouts and notifications.

// MinPollInterval bounds rollouts.poll_interval: reading a wave's jobs more
// often than this spends the hub's budget for nothing a person could see.
const MinPollInterval = time.Second

func (d *decoder) validateRollouts(r Rollouts) {
	if r.PollInterval < MinPollInterval {
		d.problem("rollouts.poll_interval", "must be at least %s", MinPollInterval)
	}
	if !(r.MaxShareOfBudget > 0 && r.MaxShareOfBudget <= 1) {
		d.problem("rollouts.max_share_of_budget", "%v: want a share greater than 0 and at most 1, e.g. 0.5", r.MaxShareOfBudget)
	}
	if r.ApprovalOverDevices < 0 {
		d.problem("rollouts.approval_over_devices", "must not be negative (0: no wave needs an approver)")
	}
}

// webhookNameRE is a webhook's name: it appears in logs and, upper-cased, in
// the HUBJOBS_NOTIFY_WEBHOOKS_<NAME>_… variables.
var webhookNameRE = regexp.MustCompile(`^[a-z0-9-]{1,64}$`)

// validateNotify checks the webhooks. A webhook's URL can carry a token in
// its path (Slack's and Mattermost's do) and its secret is a key, so neither
// is ever quoted in a message.
func (d *decoder) validateNotify(n docNotify) Notify {
	var out Notify
	seen := map[string]int{}
	for i, w := range n.Webhooks {
		key := func(k string) string { return fmt.Sprintf("notify.webhooks[%d].%s", i, k) }
		switch first, dup := seen[w.Name]; {
		case !webhookNameRE.MatchString(w.Name):
			d.problem(key("name"), "%q must be 1-64 characters of a-z, 0-9 and -", w.Name)
		case dup:
			d.problem(key("name"), "%q is already the name of notify.webhooks[%d]", w.Name, first)
		default:
			seen[w.Name] = i
		}
		hook := Webhook{Name: w.Name, Secret: Secret(w.Secret), Events: w.Events, Format: notify.Format(w.Format)}
		if w.URL == "" {
			d.problem(key("url"), "required: where events are posted, an http or https URL")
		} else if u, err := url.Parse(w.URL); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			d.problem(key("url"), "not an absolute http or https URL (the value is not shown: it may hold a token)")
		} else {
			hook.URL = u
		}
		if w.Secret == "" {
			d.problem(key("secret"), "required: the key receivers check the X-Hubjobs-Signature HMAC with")
		}
		if len(w.Events) == 0 {
			d.problem(key("events"), "required: at least one of %s", subscribable)
		}
		for j, e := range w.Events {
			eventKey := fmt.Sprintf("%s[%d]", key("events"), j)
			switch {
			case !notify.Known(e):
				d.problem(eventKey, "%q: want one of %s", e, subscribable)
			case slices.Index(w.Events, e) < j:
				d.problem(eventKey, "%q is listed twice", e)
			}
		}
		if f := notify.Format(w.Format); f != notify.FormatJSON && f != notify.FormatSlack {
			d.problem(key("format"), "%q: want json or slack", w.Format)
		}
		out.Webhooks = append(out.Webhooks, hook)
	}
	return out
}

// subscribable is notify's list of events, in words for messages: the
// events are defined once, in notify.
var subscribable = func() string {
	var names []string
	for _, e := range notify.Events() {
		names = append(names, string(e))
	}
	return strings.Join(names, ", ")
}()
