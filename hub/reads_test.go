package hub

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestQueryJobsPaging(t *testing.T) {
	pages := map[string]struct{ body, next string }{
		"":   {`[{"jobId":"a","type":"scheduleUpdateTwin","status":"completed"}]`, "p2"},
		"p2": {`{"items":[{"jobId":"b","type":"scheduleUpdateTwin","status":"running"}]}`, " "}, // swagger shape, blank header
		" ":  {`null`, ""},
	}
	hub := newFakeHub(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		p := pages[r.Header.Get("x-ms-continuation")]
		if p.next != "" {
			w.Header().Set("x-ms-continuation", p.next)
		}
		reply(w, 200, p.body)
	})
	c, _ := hub.client(t)
	var ids []string
	cont := ""
	for range 5 {
		page, err := c.QueryJobs(context.Background(), QueryJobsOptions{Continuation: cont})
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range page.Jobs {
			ids = append(ids, j.JobID)
		}
		if cont = page.Continuation; cont == "" {
			break
		}
	}
	if strings.Join(ids, ",") != "a,b" || cont != "" {
		t.Errorf("paged ids %v, final continuation %q", ids, cont)
	}
}

// TestGetJobRefusesAnAnswerAboutAnotherJob: a misrouted or wrongly cached
// answer must not put another job's status on this job's page.
func TestGetJobRefusesAnAnswerAboutAnotherJob(t *testing.T) {
	hub := newFakeHub(t, func(w http.ResponseWriter, r *http.Request, _ int) { reply(w, 200, jobCancelled) })
	c, _ := hub.client(t)
	if job, err := c.GetJob(context.Background(), "job-1"); err != nil || job.JobID != "job-1" {
		t.Fatalf("GetJob(job-1) = %+v, %v", job, err)
	}
	if job, err := c.GetJob(context.Background(), "job-2"); job != nil || !errors.Is(err, ErrBadResponse) {
		t.Fatalf("GetJob(job-2) answered about job-1 = %+v, %v; want ErrBadResponse", job, err)
	}
}
