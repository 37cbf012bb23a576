package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// DeviceTwin is one device as SELECT * FROM devices returns it: the fields
// a job's target condition is written against. Tags is nil when the twin
// has none (the hub then leaves the key out).
type DeviceTwin struct {
	DeviceID         string         `json:"deviceId"`
	ModuleID         string         `json:"moduleId,omitempty"`
	ETag             string         `json:"etag,omitempty"`
	Status           string         `json:"status,omitempty"`          // enabled, disabled
	ConnectionState  string         `json:"connectionState,omitempty"` // Connected, Disconnected
	LastActivityTime Time           `json:"lastActivityTime,omitzero"`
	Version          int64          `json:"version,omitempty"`
	Tags             map[string]any `json:"tags,omitempty"`
	Properties       TwinProperties `json:"properties"`
}

// TwinsPage is one page of twins; Continuation is empty on the last page.
type TwinsPage struct {
	Twins        []DeviceTwin
	Continuation string
}

// DeviceIDsPage is one page of device ids; Continuation is empty on the
// last page.
type DeviceIDsPage struct {
	DeviceIDs    []string
	Continuation string
}

// QueryDevices runs one page of a device query (POST /devices/query) and
// returns the twins it selects: query is the whole text, e.g.
// "SELECT * FROM devices WHERE tags.ring = '2'" (a projection of twin
// fields decodes too, leaving the others empty). The next page is the same
// query with the page's Continuation; the hub may return fewer items than
// PageSize asks, so follow Continuation until it is empty. A query over
// MaxQueryLength is refused before sending; a 400 to it matches
// ErrQueryRefused. Put ids into query with QuoteString.
func (c *Client) QueryDevices(ctx context.Context, query string, o PageOptions) (*TwinsPage, error) {
	return observe(c, "QueryDevices", func() (*TwinsPage, error) {
		twins, cont, err := deviceQuery[DeviceTwin](ctx, c, "QueryDevices", query, o)
		if err != nil {
			return nil, err
		}
		return &TwinsPage{Twins: twins, Continuation: cont}, nil
	})
}

// CountDevices counts the devices a job condition selects, with
// SELECT COUNT() AS numberOfDevices FROM devices WHERE where. where is the
// body of the WHERE clause, as a job's queryCondition is; "*" or "" count
// every device. Device queries are billed by result size, so this is much
// cheaper than reading the twins.
func (c *Client) CountDevices(ctx context.Context, where string) (int64, error) {
	return observe(c, "CountDevices", func() (int64, error) {
		const op = "CountDevices"
		rows, _, err := deviceQuery[map[string]json.RawMessage](ctx, c, op, devicesQuery("COUNT() AS numberOfDevices", where), PageOptions{})
		if err != nil {
			return 0, err
		}
		return countOf(op, rows)
	})
}

// countOf reads [{"numberOfDevices": n}]. What the hub sends when nothing
// matches is unverified, so an empty array is read as 0 too; a row without
// the count, or a count that is not a whole number, is ErrBadResponse.
func countOf(op string, rows []map[string]json.RawMessage) (int64, error) {
	if len(rows) == 0 {
		return 0, nil
	}
	for k, v := range rows[0] {
		if !strings.EqualFold(k, "numberOfDevices") {
			continue
		}
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("IoT Hub %s: %w: numberOfDevices is %s", op, ErrBadResponse, clip(plain(string(v)), 40))
		}
		return n, nil
	}
	return 0, fmt.Errorf("IoT Hub %s: %w: the answer has no numberOfDevices", op, ErrBadResponse)
}

// DeviceIDs lists one page of the ids of the devices a job condition
// selects (SELECT deviceId FROM devices WHERE where; "*" or "" for every
// device). Page through Continuation as for QueryDevices.
func (c *Client) DeviceIDs(ctx context.Context, where string, o PageOptions) (*DeviceIDsPage, error) {
	return observe(c, "DeviceIDs", func() (*DeviceIDsPage, error) {
		rows, cont, err := deviceQuery[struct {
			DeviceID string `json:"deviceId"`
		}](ctx, c, "DeviceIDs", devicesQuery("deviceId", where), o)
		if err != nil {
			return nil, err
		}
		ids := make([]string, len(rows))
		for i, r := range rows {
			ids[i] = r.DeviceID
		}
		return &DeviceIDsPage{DeviceIDs: ids, Continuation: cont}, nil
	})
}

// QueryDeviceJobs lists one page of per-device results of a job through
// POST /devices/query (SELECT * FROM devices.jobs …; only SELECT * works).
func (c *Client) QueryDeviceJobs(ctx context.Context, jobID string, o PageOptions) (*DevicesPage, error) {
	return observe(c, "QueryDeviceJobs", func() (*DevicesPage, error) {
		if err := CheckJobID(jobID); err != nil {
			return nil, err
		}
		q := "SELECT * FROM devices.jobs WHERE devices.jobs.jobId = " + QuoteString(jobID)
		devices, cont, err := deviceQuery[DeviceJob](ctx, c, "QueryDeviceJobs", q, o)
		if err != nil {
			return nil, err
		}
		return &DevicesPage{Devices: devices, Continuation: cont}, nil
	})
}

// devicesQuery builds SELECT what FROM devices with where as its WHERE
// body; a job condition's "*" (every device) has no WHERE clause.
func devicesQuery(what, where string) string {
	q := "SELECT " + what + " FROM devices"
	if w := strings.TrimSpace(where); w != "" && w != "*" {
		q += " WHERE " + w
	}
	return q
}

// deviceQuery POSTs one page of query to /devices/query and decodes it.
// The hub wants the same query body again with each continuation.
func deviceQuery[T any](ctx context.Context, c *Client, op, query string, o PageOptions) ([]T, string, error) {
	if strings.TrimSpace(query) == "" {
		return nil, "", fmt.Errorf("%w: %s: the query is empty", ErrInvalidRequest, op)
	}
	if err := CheckQueryLength("the query", query); err != nil {
		return nil, "", fmt.Errorf("%s: %w", op, err)
	}
	h, err := pagingHeaders(o)
	if err != nil {
		return nil, "", err
	}
	body, err := json.Marshal(struct {
		Query string `json:"query"`
	}{query})
	if err != nil {
		return nil, "", fmt.Errorf("%w: %s: %w", ErrInvalidRequest, op, err)
	}
	resp, err := c.do(ctx, request{op: op, method: http.MethodPost, path: "/devices/query", header: h, body: body})
	if err != nil {
		return nil, "", err
	}
	items, err := decodePage[T](op, resp)
	if err != nil {
		return nil, "", err
	}
	return items, resp.header.Get("x-ms-continuation"), nil
}
