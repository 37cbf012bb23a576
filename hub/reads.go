package hub

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// GetJob fetches one job. A 200 whose body says status "unknown" is
// ErrNotFound (see Job.absent).
func (c *Client) GetJob(ctx context.Context, id string) (*Job, error) {
	return observe(c, "GetJob", func() (*Job, error) { return c.getJob(ctx, id) })
}

func (c *Client) getJob(ctx context.Context, id string) (*Job, error) {
	const op = "GetJob"
	if err := CheckJobID(id); err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, request{op: op, method: http.MethodGet, path: "/jobs/v2/" + id})
	if err != nil {
		return nil, err
	}
	job, err := decodeJob(op, resp)
	if err != nil {
		return nil, err
	}
	if err := checkAnswer(op, id, job, ""); err != nil {
		return nil, err
	}
	return job, nil
}

// QueryJobs lists one page of jobs, newest first as the hub orders them.
// The hub answers a bare JSON array (not the swagger's QueryResult) and
// pages through the x-ms-continuation header; both an absent and an empty
// header mean this is the last page.
func (c *Client) QueryJobs(ctx context.Context, o QueryJobsOptions) (*JobsPage, error) {
	return observe(c, "QueryJobs", func() (*JobsPage, error) {
		const op = "QueryJobs"
		q := url.Values{}
		for _, f := range []struct{ name, value string }{{"jobType", string(o.Type)}, {"jobStatus", string(o.Status)}} {
			if f.value == "" {
				continue
			}
			if !validEnumFilter(f.value) {
				return nil, fmt.Errorf("%w: %s filter %q is not a name of letters", ErrInvalidRequest, f.name, clip(f.value, 40))
			}
			q.Set(f.name, f.value)
		}
		h, err := pagingHeaders(PageOptions{PageSize: o.PageSize, Continuation: o.Continuation})
		if err != nil {
			return nil, err
		}
		resp, err := c.do(ctx, request{op: op, method: http.MethodGet, path: "/jobs/v2/query", query: q, header: h})
		if err != nil {
			return nil, err
		}
		jobs, err := decodePage[Job](op, resp)
		if err != nil {
			return nil, err
		}
		return &JobsPage{Jobs: jobs, Continuation: resp.header.Get("x-ms-continuation")}, nil
	})
}

// validEnumFilter admits enum-like filter values (letters only, as every
// type and status the hub knows), so a filter can never be anything else.
func validEnumFilter(s string) bool {
	if len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// maxContinuation bounds a continuation token echoed back from a URL.
const maxContinuation = 8 << 10

// pagingHeaders are the x-ms-* request headers of a query page. The token
// is opaque but it travels in a header, so it must be a valid header value.
func pagingHeaders(o PageOptions) (http.Header, error) {
	h := http.Header{}
	if o.PageSize < 0 {
		return nil, fmt.Errorf("%w: page size %d is negative", ErrInvalidRequest, o.PageSize)
	}
	if o.PageSize > 0 {
		h.Set("x-ms-max-item-count", strconv.Itoa(o.PageSize))
	}
	if o.Continuation != "" {
		if len(o.Continuation) > maxContinuation {
			return nil, fmt.Errorf("%w: continuation token is %d bytes", ErrInvalidRequest, len(o.Continuation))
		}
		for i := 0; i < len(o.Continuation); i++ {
			if b := o.Continuation[i]; b < 0x20 || b == 0x7f {
				return nil, fmt.Errorf("%w: continuation token has a control character", ErrInvalidRequest)
			}
		}
		h.Set("x-ms-continuation", o.Continuation)
	}
	return h, nil
}
