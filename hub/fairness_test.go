package hub

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// jobsHub answers any job id starting with "op-" as a queued job, cancels
// with "cancelled", and every other id as not found.
func jobsHub(w http.ResponseWriter, r *http.Request, _ int) {
	id := path.Base(strings.TrimSuffix(r.URL.Path, "/cancel"))
	switch {
	case !strings.HasPrefix(id, "op-"):
		reply(w, 404, errNotFound)
	case r.Method == http.MethodPost:
		reply(w, 200, strings.Replace(jobCancelled, "job-1", id, 1))
	default:
		reply(w, 200, strings.Replace(jobQueued, "job-1", id, 1))
	}
}

func budgetCalls(m *Metrics, bucket, class, result string) float64 {
	return testutil.ToFloat64(m.budget.WithLabelValues("prod", bucket, class, result))
}

// TestBudgetOneReaderCannotStarveAnOperator is the probe the issue
// describes: one signed-in user reads many unknown job ids as fast as they
// can; an operator's job page, the cancel's re-read and the cancel still
// go through, and the reader never spent more than their share.
func TestBudgetOneReaderCannotStarveAnOperator(t *testing.T) {
	b, hub, _, m := budgetFixture(t, BudgetConfig{}, jobsHub) // 100/min: burst 10, 2 kept for writes
	mallory := WithCaller(context.Background(), "mallory")
	var refusedShare int
	for i := range 100 {
		_, err := b.GetJob(mallory, fmt.Sprintf("unknown-%d", i))
		if be, ok := errors.AsType[*BudgetError](err); ok && be.Share {
			refusedShare++
		} else if !errors.Is(err, ErrNotFound) {
			t.Fatalf("mallory's read %d: %v", i, err)
		}
	}
	if n := len(hub.requests()); n != 5 || refusedShare != 95 {
		t.Fatalf("mallory made %d hub calls and was refused %d times; want her share (5 of the burst of 10) and 95 refusals", n, refusedShare)
	}
	olga := WithCaller(context.Background(), "olga")
	if got, err := b.GetJob(olga, "op-1"); err != nil || got.Stale {
		t.Fatalf("operator's job page: %+v, %v", got, err)
	}
	if got, err := b.GetJob(ForWrite(olga), "op-2"); err != nil || got.Value.Status != StatusQueued {
		t.Fatalf("cancel's re-read: %+v, %v", got, err)
	}
	if job, err := b.CancelJob(olga, "op-2"); err != nil || job.Status != StatusCancelled {
		t.Fatalf("operator's cancel: %+v, %v", job, err)
	}
	if spent, refused := budgetCalls(m, "jobs", ClassPeople, "spent"), budgetCalls(m, "jobs", ClassPeople, "refused_share"); spent != 8 || refused != 95 {
		t.Errorf("people's budget calls: %v spent, %v refused for their share; want 8 and 95", spent, refused)
	}
}

// TestBudgetRemembersNotFound: an unknown id costs one hub call per TTL,
// and a create of that id forgets the "not found" at once.
func TestBudgetRemembersNotFound(t *testing.T) {
	b, hub, clock, _ := budgetFixture(t, BudgetConfig{TTL: 2 * time.Second}, func(w http.ResponseWriter, r *http.Request, _ int) {
		if r.Method == http.MethodPut {
			reply(w, 200, `{"jobId":"ghost","type":"scheduleDeviceMethod","status":"queued"}`)
			return
		}
		reply(w, 404, errNotFound)
	})
	ctx := context.Background()
	for range 3 {
		if _, err := b.GetJob(ctx, "ghost"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("GetJob(ghost) = %v, want ErrNotFound", err)
		}
	}
	if n := hub.count("GET", "/jobs/v2/ghost"); n != 1 {
		t.Errorf("3 reads within the TTL made %d hub calls, want 1", n)
	}
	clock.Advance(2 * time.Second)
	b.GetJob(ctx, "ghost")
	if n := hub.count("GET", "/jobs/v2/ghost"); n != 2 {
		t.Errorf("a read after the TTL made %d hub calls in all, want 2", n)
	}
	if _, err := b.CreateJob(ctx, methodRequest("ghost", "*")); err != nil {
		t.Fatal(err)
	}
	b.GetJob(ctx, "ghost")
	if n := hub.count("GET", "/jobs/v2/ghost"); n != 3 {
		t.Errorf("a read after the create made %d hub calls in all, want 3: the remembered not-found must go", n)
	}
}

// TestBudgetForWriteDrawsOnTheReserve: reads stop two tokens short of the
// bottom; a cancel's re-read (ForWrite) and the cancel take those two.
func TestBudgetForWriteDrawsOnTheReserve(t *testing.T) {
	b, hub, _, _ := budgetFixture(t, BudgetConfig{JobsOpsPerMinute: 60, CallerShare: 1}, jobsHub) // burst 6
	ctx := WithCaller(context.Background(), "olga")
	for i := range 4 {
		if _, err := b.GetJob(ctx, fmt.Sprintf("op-%d", i)); err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
	}
	if _, err := b.GetJob(ctx, "op-9"); !errors.Is(err, ErrThrottled) {
		t.Fatalf("fifth read: %v, want the reserve kept", err)
	}
	if _, err := b.GetJob(ForWrite(ctx), "op-9"); err != nil {
		t.Fatalf("re-read for a cancel: %v", err)
	}
	if _, err := b.CancelJob(ctx, "op-9"); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	if _, err := b.CancelJob(ctx, "op-8"); !errors.Is(err, ErrThrottled) {
		t.Fatalf("a cancel with the bucket empty: %v", err)
	}
	if n := len(hub.requests()); n != 6 {
		t.Errorf("%d hub calls, want 6", n)
	}
}

// TestBudgetCapsAConfiguredCaller: background work with a configured share
// never takes more than it, writes included, and people keep the rest.
func TestBudgetCapsAConfiguredCaller(t *testing.T) {
	b, _, _, m := budgetFixture(t, BudgetConfig{CallerShares: map[string]float64{"engine": 0.3}}, jobsHub) // burst 10: 3 for the engine
	engine := WithCaller(context.Background(), "engine")
	calls := []func(i int) error{
		func(i int) error { _, err := b.GetJob(engine, fmt.Sprintf("op-r%d", i)); return err },
		func(i int) error { _, err := b.CancelJob(engine, fmt.Sprintf("op-c%d", i)); return err },
		func(i int) error { _, err := b.GetJob(ForWrite(engine), fmt.Sprintf("op-w%d", i)); return err },
	}
	var made, refused int
	for i := range 12 {
		err := calls[i%3](i)
		if be, ok := errors.AsType[*BudgetError](err); ok && be.Share {
			refused++
		} else if err == nil {
			made++
		} else {
			t.Fatalf("engine call %d: %v", i, err)
		}
	}
	if made != 3 || refused != 9 {
		t.Errorf("the engine made %d calls and was refused %d; want 3 (30%% of 10) and 9", made, refused)
	}
	if _, err := b.GetJob(WithCaller(context.Background(), "olga"), "op-x"); err != nil {
		t.Errorf("a person after the engine: %v", err)
	}
	if got := budgetCalls(m, "jobs", "engine", "spent"); got != 3 {
		t.Errorf("engine class spent %v, want 3", got)
	}
	if got := budgetCalls(m, "jobs", ClassPeople, "spent"); got != 1 {
		t.Errorf("people class spent %v, want 1", got)
	}
}

// TestBudgetSpentCallerDoesNotSpoilAnotherCallersRead: a caller out of
// share never starts (or joins) a flight that someone else then shares.
func TestBudgetSpentCallerDoesNotSpoilAnotherCallersRead(t *testing.T) {
	b, _, _, _ := budgetFixture(t, BudgetConfig{JobsOpsPerMinute: 20}, jobsHub) // burst 2: one each
	mallory, olga := WithCaller(context.Background(), "mallory"), WithCaller(context.Background(), "olga")
	b.GetJob(mallory, "unknown-1")
	if _, err := b.GetJob(mallory, "op-1"); !errors.Is(err, ErrThrottled) {
		t.Fatalf("mallory over her share: %v", err)
	}
	if got, err := b.GetJob(olga, "op-1"); err != nil || got.Stale {
		t.Fatalf("olga's read of the same job: %+v, %v", got, err)
	}
}

func TestBudgetCallerAllowancesAreBounded(t *testing.T) {
	b, _, _, _ := budgetFixture(t, BudgetConfig{MaxCallers: 8}, jobsHub)
	for i := range 50 {
		b.GetJob(WithCaller(context.Background(), fmt.Sprint("user-", i)), fmt.Sprint("op-", i))
	}
	if n := b.callers.lru.Len(); n > 8 {
		t.Errorf("%d allowances kept, want at most 8", n)
	}
}
