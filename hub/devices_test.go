package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// registryHub is a fake hub holding n devices ("dev-000" …) that answers
// SELECT deviceId FROM devices in pages of at most 100, whatever the page
// size asked, as the reference says the hub may; the continuation token is
// the offset of the next page. Any other query is refused as invalid.
func registryHub(t *testing.T, n int) *fakeHub {
	t.Helper()
	var hub *fakeHub
	hub = newFakeHub(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		seen := hub.requests()
		var body struct{ Query string }
		if err := json.Unmarshal([]byte(seen[len(seen)-1].Body), &body); err != nil {
			reply(w, 400, `{"Message":"ErrorCode:ArgumentInvalid;bad body"}`)
			return
		}
		if body.Query != "SELECT deviceId FROM devices" {
			reply(w, 400, `{"Message":"ErrorCode:ArgumentInvalid;The query is invalid. Please check the format of the query and try again."}`)
			return
		}
		from, _ := strconv.Atoi(r.Header.Get("x-ms-continuation"))
		size, _ := strconv.Atoi(r.Header.Get("x-ms-max-item-count"))
		size = min(max(size, 1), 100)
		to := min(from+size, n)
		var rows []string
		for i := from; i < to; i++ {
			rows = append(rows, fmt.Sprintf(`{"deviceId":"dev-%03d"}`, i))
		}
		var next []string
		if to < n {
			next = []string{"x-ms-continuation", strconv.Itoa(to)}
		}
		reply(w, 200, "["+strings.Join(rows, ",")+"]", append(next, "x-ms-item-type", "Raw")...)
	})
	return hub
}

func TestDeviceIDsPagesThroughTheRegistry(t *testing.T) {
	hub := registryHub(t, 250)
	c, _ := hub.client(t)
	var ids []string
	cont := ""
	for range 10 {
		page, err := c.DeviceIDs(context.Background(), "*", PageOptions{PageSize: 1000, Continuation: cont})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, page.DeviceIDs...)
		if cont = page.Continuation; cont == "" {
			break
		}
	}
	if len(ids) != 250 || ids[0] != "dev-000" || ids[249] != "dev-249" {
		t.Fatalf("paged %d ids (%v … %v), want dev-000 … dev-249", len(ids), ids[:1], ids[len(ids)-1:])
	}
	if n := hub.count("POST", "/devices/query"); n != 3 {
		t.Errorf("%d queries, want 3 pages of at most 100", n)
	}
	for i, r := range hub.requests() {
		if r.Method != "POST" || r.Path != "/devices/query" || r.Header.Get("x-ms-max-item-count") != "1000" {
			t.Errorf("request %d: %s %s page size %q", i, r.Method, r.Path, r.Header.Get("x-ms-max-item-count"))
		}
	}
}

func TestCountDevices(t *testing.T) {
	for _, tc := range []struct {
		where, wantQuery, answer string
		want                     int64
		wantErr                  error
	}{
		{"tags.ring = '2'", "SELECT COUNT() AS numberOfDevices FROM devices WHERE tags.ring = '2'", `[{"numberOfDevices":10456}]`, 10456, nil},
		{"*", "SELECT COUNT() AS numberOfDevices FROM devices", `[{"numberOfDevices":3}]`, 3, nil},
		{"  ", "SELECT COUNT() AS numberOfDevices FROM devices", `[{"NumberOfDevices":7}]`, 7, nil},
		{"deviceId = " + QuoteString("it's"), `SELECT COUNT() AS numberOfDevices FROM devices WHERE deviceId = 'it\'s'`, `[]`, 0, nil},
		{"x = 1", "SELECT COUNT() AS numberOfDevices FROM devices WHERE x = 1", `[{"numberOfDevices":"many"}]`, 0, ErrBadResponse},
		{"x = 1", "SELECT COUNT() AS numberOfDevices FROM devices WHERE x = 1", `[{"count":1}]`, 0, ErrBadResponse},
		{"x = 1", "SELECT COUNT() AS numberOfDevices FROM devices WHERE x = 1", `[{"numberOfDevices":1.5}]`, 0, ErrBadResponse},
	} {
		hub := newFakeHub(t, func(w http.ResponseWriter, r *http.Request, _ int) { reply(w, 200, tc.answer) })
		c, _ := hub.client(t)
		n, err := c.CountDevices(context.Background(), tc.where)
		if n != tc.want || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
			t.Errorf("CountDevices(%q) = %d, %v; want %d, %v", tc.where, n, err, tc.want, tc.wantErr)
		}
		var body struct{ Query string }
		if err := json.Unmarshal([]byte(hub.requests()[0].Body), &body); err != nil || body.Query != tc.wantQuery {
			t.Errorf("CountDevices(%q) sent %q, want %q", tc.where, hub.requests()[0].Body, tc.wantQuery)
		}
	}
}

// TestQueryDevicesDecodesTwins uses a twin shaped like the recorded one:
// times with Z, tags absent when the twin has none, $metadata in properties.
func TestQueryDevicesDecodesTwins(t *testing.T) {
	const twins = `[{"deviceId":"d1","etag":"AAAAAAAAAAE=","deviceEtag":"NjI5","status":"enabled","statusUpdateTime":"0001-01-01T00:00:00Z",
"connectionState":"Disconnected","lastActivityTime":"2030-01-02T03:04:05.1234567Z","cloudToDeviceMessageCount":0,"authenticationType":"sas",
"x509Thumbprint":{"primaryThumbprint":null,"secondaryThumbprint":null},"version":4,"tags":{"ring":"2","site":{"city":"Lyon"}},
"properties":{"desired":{"fw":"1.2","$metadata":{"$lastUpdated":"2030-01-01T00:00:00Z"},"$version":2},"reported":{"fw":"1.1","$version":3}},
"capabilities":{"iotEdge":false}},
{"deviceId":"d2","status":"enabled","version":2,"properties":{"desired":{"$version":1},"reported":{"$version":1}}}]`
	hub := newFakeHub(t, func(w http.ResponseWriter, r *http.Request, _ int) { reply(w, 200, twins, "x-ms-item-type", "Twin") })
	c, _ := hub.client(t)
	page, err := c.QueryDevices(context.Background(), "SELECT * FROM devices WHERE tags.ring = '2'", PageOptions{PageSize: 100})
	if err != nil || len(page.Twins) != 2 || page.Continuation != "" {
		t.Fatalf("QueryDevices = %+v, %v", page, err)
	}
	d1, d2 := page.Twins[0], page.Twins[1]
	if d1.DeviceID != "d1" || d1.Tags["ring"] != "2" || d1.Properties.Desired["fw"] != "1.2" || d1.Properties.Reported["fw"] != "1.1" ||
		d1.ConnectionState != "Disconnected" || d1.Version != 4 || d1.LastActivityTime.Nanosecond() != 123456700 {
		t.Errorf("twin d1 = %+v", d1)
	}
	if d2.DeviceID != "d2" || d2.Tags != nil {
		t.Errorf("twin d2 = %+v; a twin without tags has nil Tags", d2)
	}
}

func TestDeviceQueriesRefused(t *testing.T) {
	hub := newFakeHub(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		reply(w, 400, `{"Message":"ErrorCode:ArgumentInvalid;The query is invalid. Please check the format of the query and try again."}`)
	})
	c, _ := hub.client(t)
	ctx := context.Background()
	long := "deviceId IN [" + strings.Repeat("'dev-0001',", 800) + "'x']"
	for name, call := range map[string]func(where string) error{
		"QueryDevices": func(w string) error {
			_, err := c.QueryDevices(ctx, "SELECT * FROM devices WHERE "+w, PageOptions{})
			return err
		},
		"CountDevices": func(w string) error { _, err := c.CountDevices(ctx, w); return err },
		"DeviceIDs":    func(w string) error { _, err := c.DeviceIDs(ctx, w, PageOptions{}); return err },
	} {
		if err := call(long); !errors.Is(err, ErrInvalidRequest) || !errors.Is(err, ErrQueryTooLong) {
			t.Errorf("%s(%d characters) err = %v, want ErrInvalidRequest and ErrQueryTooLong", name, len(long), err)
		}
		err := call("tags.x = = 1")
		if !errors.Is(err, ErrQueryRefused) || errors.Is(err, ErrQueryTooLong) || errors.Is(err, ErrInvalidRequest) {
			t.Errorf("%s(invalid) err = %v, want ErrQueryRefused only", name, err)
		}
	}
	if n := len(hub.requests()); n != 3 {
		t.Errorf("%d requests, want 3: the over-long queries are never sent", n)
	}
	if _, err := c.QueryDevices(ctx, " ", PageOptions{}); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("QueryDevices(empty) err = %v", err)
	}
}
