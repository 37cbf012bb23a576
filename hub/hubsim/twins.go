package hubsim

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// device is one simulated device and its twin. Twin-update jobs merge into
// tags and desired; reported changes only when the device "reports" after
// a job reached it (its health). version is the twin's version, bumped on
// every change; the sections keep their own $version.
type device struct {
	id        string
	behaviour Behaviour
	tags      map[string]any
	desired   map[string]any
	reported  map[string]any

	version                         int64
	desiredVersion, reportedVersion int64
	desiredUpdated, reportedUpdated time.Time
}

func newDevices(entries []Device, now time.Time) []device {
	out := make([]device, len(entries))
	for i, e := range entries {
		b := e.Behaviour
		if b == "" {
			b = BehaviourOK
		}
		out[i] = device{
			id: e.DeviceID, behaviour: b,
			tags:     deepCopy(e.Tags),
			desired:  map[string]any{},
			reported: deepCopy(e.Reported),
			version:  1, desiredVersion: 1, reportedVersion: 1,
			desiredUpdated: now, reportedUpdated: now,
		}
		if out[i].reported == nil {
			out[i].reported = map[string]any{}
		}
	}
	return out
}

// twinRoots are the paths a twin condition may name: deviceId, status,
// connectionState, version, etag and lastActivityTime alone;
// capabilities.iotEdge; tags, properties.desired and
// properties.reported followed by a property; any of them may carry the
// collection's name in front (devices.tags.site), as the docs' examples do.
// Names match case-insensitively, as the hub's do.
func twinScope(path []string) string {
	path = withoutCollection(path)
	root := strings.ToLower(path[0])
	switch {
	case len(path) == 1 && slices.Contains([]string{"deviceid", "status", "connectionstate", "version", "etag", "lastactivitytime"}, root):
		return ""
	case root == "capabilities" && len(path) == 2 && strings.EqualFold(path[1], "iotEdge"):
		return ""
	case root == "tags" && len(path) >= 2:
		return ""
	case root == "properties" && len(path) >= 3 && (strings.EqualFold(path[1], "desired") || strings.EqualFold(path[1], "reported")):
		return ""
	}
	return "unknown property " + strconv.Quote(strings.Join(path, ".")) + ": use deviceId, tags.<name>, properties.desired.<name> or properties.reported.<name>"
}

// withoutCollection drops a leading "devices." from a twin path.
func withoutCollection(path []string) []string {
	if len(path) > 1 && strings.EqualFold(path[0], "devices") {
		return path[1:]
	}
	return path
}

// value resolves a path the twinScope accepted.
func (d *device) value(path []string) (any, bool) {
	path = withoutCollection(path)
	switch strings.ToLower(path[0]) {
	case "deviceid":
		return d.id, true
	case "status":
		return "enabled", true
	case "connectionstate":
		return "Disconnected", true
	case "version":
		return float64(d.version), true
	case "etag":
		return versionETag(d.version), true
	case "lastactivitytime":
		return dotNetZeroTime, true
	case "capabilities":
		return false, true // iotEdge: no simulated device is an edge device
	case "tags":
		return lookup(d.tags, path[1:])
	}
	section, version := d.desired, d.desiredVersion
	if strings.EqualFold(path[1], "reported") {
		section, version = d.reported, d.reportedVersion
	}
	if len(path) == 3 && path[2] == "$version" {
		return float64(version), true
	}
	return lookup(section, path[2:])
}

// lookup descends m along path; a name matches its key exactly, else
// case-insensitively.
func lookup(m map[string]any, path []string) (any, bool) {
	var cur any = m
	for _, seg := range path {
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		v, ok := obj[seg]
		if !ok {
			for k, x := range obj {
				if strings.EqualFold(k, seg) {
					v, ok = x, true
					break
				}
			}
		}
		if !ok {
			return nil, false
		}
		cur = v
	}
	return cur, true
}

// mergePatch applies a JSON merge patch (RFC 7396) to target in place:
// null deletes, objects merge recursively, anything else replaces. Values
// are copied, so twins never share nested maps.
func mergePatch(target, patch map[string]any) {
	for k, pv := range patch {
		switch pv := pv.(type) {
		case nil:
			delete(target, k)
		case map[string]any:
			child, ok := target[k].(map[string]any)
			if !ok {
				child = map[string]any{}
				target[k] = child
			}
			mergePatch(child, pv)
		default:
			target[k] = pv // strings, numbers, bools; arrays are never mutated in place
		}
	}
}

func deepCopy(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := maps.Clone(m)
	for k, v := range out {
		if child, ok := v.(map[string]any); ok {
			out[k] = deepCopy(child)
		}
	}
	return out
}

// twinPatch is a twin job's update, decoded once at creation.
type twinPatch struct {
	tags, desired map[string]any
}

func decodeTwinPatch(t *twinSpec) *twinPatch {
	if t == nil {
		return nil
	}
	p := &twinPatch{}
	_ = json.Unmarshal(t.Tags, &p.tags) // validated by validTwin (or a demo constant)
	if t.Properties != nil {
		_ = json.Unmarshal(t.Properties.Desired, &p.desired)
	}
	return p
}

// reached applies what happens to a device once a job succeeded on it at
// time at: the twin patch, then the device reporting its health ("error"
// for unhealthy devices, "ok" otherwise).
func (d *device) reached(patch *twinPatch, at time.Time) {
	if patch != nil {
		if patch.tags != nil {
			if d.tags == nil {
				d.tags = map[string]any{}
			}
			mergePatch(d.tags, patch.tags)
		}
		if patch.desired != nil {
			mergePatch(d.desired, patch.desired)
			d.desiredVersion++
			d.desiredUpdated = at
		}
		d.version++
	}
	health := "ok"
	if d.behaviour == BehaviourUnhealthy {
		health = "error"
	}
	d.reported["health"] = health
	d.reportedVersion++
	d.reportedUpdated = at
	d.version++
}

// settle applies, in the order they happened, the effects of every device
// that finished a job since the last call. Job progress is a function of
// the clock, so twins catch up lazily here before anything reads them.
// Callers hold s.mu.
func (s *Sim) settle(now time.Time) {
	type effect struct {
		at  time.Time
		j   *job
		idx int
	}
	var effects []effect
	for _, j := range s.jobs {
		done := j.doneBy(now)
		for k := j.applied; k < done; k++ {
			if j.outcomes[k] == outcomeSucceeded {
				effects = append(effects, effect{j.finish(k), j, k})
			}
		}
		j.applied = max(j.applied, done)
	}
	slices.SortFunc(effects, func(a, b effect) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		if c := strings.Compare(a.j.id, b.j.id); c != 0 {
			return c
		}
		return a.idx - b.idx
	})
	for _, e := range effects {
		s.registry[e.j.targets[e.idx]].reached(e.j.patch, e.at)
	}
}

// twinItem is one SELECT * FROM devices result, in the real shape (keys
// as recorded; tags absent when the twin has none).
type twinItem struct {
	DeviceID                  string           `json:"deviceId"`
	ETag                      string           `json:"etag"`
	DeviceETag                string           `json:"deviceEtag"`
	Status                    string           `json:"status"`
	StatusUpdateTime          string           `json:"statusUpdateTime"`
	ConnectionState           string           `json:"connectionState"`
	LastActivityTime          string           `json:"lastActivityTime"`
	CloudToDeviceMessageCount int              `json:"cloudToDeviceMessageCount"`
	AuthenticationType        string           `json:"authenticationType"`
	X509Thumbprint            x509Thumbprint   `json:"x509Thumbprint"`
	Version                   int64            `json:"version"`
	Tags                      map[string]any   `json:"tags,omitempty"`
	Properties                twinItemSections `json:"properties"`
	Capabilities              map[string]bool  `json:"capabilities"`
}

type x509Thumbprint struct {
	Primary   *string `json:"primaryThumbprint"`
	Secondary *string `json:"secondaryThumbprint"`
}

type twinItemSections struct {
	Desired  map[string]any `json:"desired"`
	Reported map[string]any `json:"reported"`
}

const dotNetZeroTime = "0001-01-01T00:00:00Z"

func (d *device) item() twinItem {
	return twinItem{
		DeviceID: d.id, ETag: versionETag(d.version), DeviceETag: base64.StdEncoding.EncodeToString([]byte(strconv.FormatUint(hash64(0, "deviceEtag", d.id)%1e9, 10))),
		Status: "enabled", StatusUpdateTime: dotNetZeroTime, ConnectionState: "Disconnected", LastActivityTime: dotNetZeroTime,
		AuthenticationType: "sas", Version: d.version, Tags: d.tags,
		Properties: twinItemSections{
			Desired:  withMetadata(d.desired, d.desiredVersion, d.desiredUpdated),
			Reported: withMetadata(d.reported, d.reportedVersion, d.reportedUpdated),
		},
		Capabilities: map[string]bool{"iotEdge": false},
	}
}

// versionETag is an etag like the hub's ("AAAAAAAAAAE="): base64 of the
// version as 8 big-endian bytes.
func versionETag(v int64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(v))
	return base64.StdEncoding.EncodeToString(b[:])
}

func withMetadata(section map[string]any, version int64, updated time.Time) map[string]any {
	out := maps.Clone(section)
	if out == nil {
		out = map[string]any{}
	}
	out["$metadata"] = map[string]any{"$lastUpdated": updated.UTC().Format("2006-01-02T15:04:05.0000000Z")}
	out["$version"] = version
	return out
}
