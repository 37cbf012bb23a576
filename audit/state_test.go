package audit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// crashChildEnv makes the test binary act as a portal that dies between a
// cancel's intent and its outcome (see TestMain).
const crashChildEnv = "HUBJOBS_AUDIT_CRASH_CHILD_DSN"

func TestMain(m *testing.M) {
	if dsn := os.Getenv(crashChildEnv); dsn != "" {
		crashChild(dsn)
	}
	os.Exit(m.Run())
}

// crashChild writes a cancel intent, says so on stdout, then waits where the
// hub call would be, for the parent's SIGKILL.
func crashChild(dsn string) {
	ctx := context.Background()
	s, err := Open(ctx, dsn)
	if err == nil {
		_, err = s.Append(ctx, cancelIntent("req-crash", "job-crash"))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(3)
	}
	fmt.Println("intent written")
	time.Sleep(time.Minute)
	os.Exit(4) // not killed: the parent notices the exit status
}

// TestReconcile_AfterKillBetweenIntentAndOutcome is docs/security.md H50.
func TestReconcile_AfterKillBetweenIntentAndOutcome(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dsn := b.newDSN(t)
		child := exec.Command(os.Args[0], "-test.run=^$")
		child.Env = append(os.Environ(), crashChildEnv+"="+dsn)
		child.Stderr = os.Stderr
		out, err := child.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := child.Start(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil || line != "intent written\n" {
			child.Process.Kill()
			t.Fatalf("child said %q, %v", line, err)
		}
		if err := child.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		err = child.Wait()
		if ws, ok := child.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("child ended with %v, want killed by SIGKILL", err)
		}

		// The restart: later than any replica's grace, so the intent is due.
		later := func() time.Time { return time.Now().Add(3 * time.Minute) }
		s := openStore(t, dsn, WithClock(later))
		pending, err := s.PendingIntents(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(pending) != 1 || pending[0].RequestID != "req-crash" {
			t.Fatalf("pending intents after the crash = %+v, want the child's", pending)
		}
		hub := &fakeHub{status: map[string]string{"prod/job-crash": "cancelled"}}
		n, err := s.Reconcile(context.Background(), hub.lookup)
		if err != nil || n != 1 {
			t.Fatalf("Reconcile = %d, %v; want 1, nil", n, err)
		}
		if got := hub.calls(); !slices.Equal(got, []string{"prod/job-crash"}) {
			t.Errorf("hub lookups = %v, want one for the interrupted job", got)
		}
		history, err := s.List(context.Background(), Filter{Hub: "prod", JobID: "job-crash"})
		if err != nil {
			t.Fatal(err)
		}
		if len(history) != 2 {
			t.Fatalf("job history = %+v, want intent and reconciled outcome", history)
		}
		outcome, intent := history[0], history[1]
		if outcome.Action != JobCancelReconciled || outcome.Result != "cancelled" ||
			outcome.RequestID != intent.RequestID || outcome.Actor.Subject != intent.Actor.Subject {
			t.Errorf("outcome = %+v, want job.cancel.reconciled, result cancelled, the intent's request and actor", outcome)
		}
		if pending, _ := s.PendingIntents(context.Background()); len(pending) != 0 {
			t.Errorf("still pending after Reconcile: %+v", pending)
		}
		if err := s.Verify(context.Background()); err != nil {
			t.Errorf("Verify: %v", err)
		}
	})
}

// fakeHub answers job lookups from a map; a missing job is a lookup error.
type fakeHub struct {
	mu     sync.Mutex
	status map[string]string
	seen   []string
}

var errHubDown = errors.New("hub unreachable")

func (h *fakeHub) lookup(_ context.Context, hub, jobID string) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	key := hub + "/" + jobID
	h.seen = append(h.seen, key)
	if st, ok := h.status[key]; ok {
		return st, nil
	}
	return "", errHubDown
}

func (h *fakeHub) calls() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.seen)
}

func TestReconcile(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		clock := newFakeClock()
		dsn := b.newDSN(t)
		s := openStore(t, dsn, WithClock(clock.Now), WithReconcileGrace(time.Minute))
		ctx := context.Background()
		mustAppend(t, s, cancelIntent("r1", "job-1"))
		mustAppend(t, s, Entry{Action: JobCancelSucceeded, RequestID: "r1", Hub: "prod", JobID: "job-1"})
		mustAppend(t, s, cancelIntent("r2", "job-2"))
		mustAppend(t, s, cancelIntent("r3", "job-3"))
		clock.Advance(2 * time.Minute)
		mustAppend(t, s, cancelIntent("r4", "job-4")) // in flight right now

		pending, err := s.PendingIntents(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := requestIDs(pending); !slices.Equal(got, []string{"r2", "r3", "r4"}) {
			t.Fatalf("PendingIntents = %v, want r2 r3 r4", got)
		}

		hub := &fakeHub{status: map[string]string{"prod/job-2": "running", "prod/job-4": "cancelled"}}
		n, err := s.Reconcile(ctx, hub.lookup)
		if n != 1 || !errors.Is(err, errHubDown) || !strings.Contains(err.Error(), "job-3") {
			t.Fatalf("Reconcile = %d, %v; want 1 and the job-3 lookup failure", n, err)
		}
		if pending, _ = s.PendingIntents(ctx); !slices.Equal(requestIDs(pending), []string{"r3", "r4"}) {
			t.Errorf("after Reconcile pending = %v, want r3 (lookup failed) and r4 (within grace)", requestIDs(pending))
		}

		// Later, with the hub back, two replicas reconcile at once: each
		// intent gets exactly one outcome.
		clock.Advance(2 * time.Minute)
		hub.status["prod/job-3"] = "completed"
		other := openStore(t, dsn, WithClock(clock.Now), WithReconcileGrace(time.Minute))
		var wg sync.WaitGroup
		settled := make([]int, 2)
		for i, st := range []*Store{s, other} {
			wg.Go(func() {
				var err error
				if settled[i], err = st.Reconcile(ctx, hub.lookup); err != nil {
					t.Errorf("Reconcile: %v", err)
				}
			})
		}
		wg.Wait()
		if settled[0]+settled[1] != 2 {
			t.Errorf("the two replicas settled %v, want 2 in total", settled)
		}
		outcomes, err := s.List(ctx, Filter{Action: JobCancelReconciled})
		if err != nil {
			t.Fatal(err)
		}
		if got := requestIDs(outcomes); !slices.Equal(sorted(got), []string{"r2", "r3", "r4"}) {
			t.Errorf("reconciled outcomes = %v, want one each for r2 r3 r4", got)
		}
		if err := s.Verify(ctx); err != nil {
			t.Errorf("Verify: %v", err)
		}
	})
}

func requestIDs(entries []Entry) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.RequestID
	}
	return out
}

func sorted(s []string) []string { slices.Sort(s); return s }

func TestSnapshots(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		clock := newFakeClock()
		dsn := b.newDSN(t)
		s := openStore(t, dsn, WithClock(clock.Now))
		ctx := context.Background()
		if _, err := s.Snapshot(ctx, "prod", "job-1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Snapshot of an unseen job = %v, want ErrNotFound", err)
		}
		body := []byte(`{"jobId":"job-1","status":"running"}`)
		first := clock.Now().Truncate(time.Microsecond)
		save := func(body []byte) {
			t.Helper()
			if err := s.SaveSnapshot(ctx, Snapshot{Hub: "prod", JobID: "job-1", Body: body}); err != nil {
				t.Fatal(err)
			}
		}
		wantSnapshot := func(body []byte, lastSeen time.Time) {
			t.Helper()
			got, err := s.Snapshot(ctx, "prod", "job-1")
			if err != nil {
				t.Fatal(err)
			}
			if string(got.Body) != string(body) || !got.LastSeen.Equal(lastSeen) {
				t.Errorf("Snapshot = %s seen %v, want %s seen %v", got.Body, got.LastSeen, body, lastSeen)
			}
		}
		save(body)
		wantSnapshot(body, first)

		clock.Advance(30 * time.Second) // same body, recently written: no write
		save(body)
		wantSnapshot(body, first)

		clock.Advance(31 * time.Second) // same body, a minute old: LastSeen refreshed
		save(body)
		wantSnapshot(body, clock.Now().Truncate(time.Microsecond))

		clock.Advance(time.Second) // new body: written at once
		done := []byte(`{"jobId":"job-1","status":"completed"}`)
		save(done)
		wantSnapshot(done, clock.Now().Truncate(time.Microsecond))

		// A restarted replica sees it.
		if got, err := openStore(t, dsn).Snapshot(ctx, "prod", "job-1"); err != nil || string(got.Body) != string(done) {
			t.Errorf("after reopen Snapshot = %s, %v", got.Body, err)
		}
		if err := s.SaveSnapshot(ctx, Snapshot{Hub: "prod", JobID: "big", Body: make([]byte, MaxSnapshotBytes+1)}); !errors.Is(err, ErrInvalid) {
			t.Errorf("oversized snapshot: %v, want ErrInvalid", err)
		}
	})
}

func TestRevocations(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		clock := newFakeClock()
		dsn := b.newDSN(t)
		s := openStore(t, dsn, WithClock(clock.Now))
		ctx := context.Background()
		isRevoked := func(sid string) bool {
			t.Helper()
			ok, err := s.IsRevoked(ctx, sid)
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		if err := s.Revoke(ctx, "sid-a", clock.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := s.Revoke(ctx, "sid-b", clock.Now().Add(8*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := s.Revoke(ctx, "sid-b", clock.Now().Add(time.Minute)); err != nil { // an earlier time does not shorten it
			t.Fatal(err)
		}
		if !isRevoked("sid-a") || !isRevoked("sid-b") || isRevoked("sid-c") {
			t.Fatal("want sid-a and sid-b revoked, sid-c not")
		}
		clock.Advance(2 * time.Hour)
		if isRevoked("sid-a") || !isRevoked("sid-b") {
			t.Fatal("after 2h want sid-a expired, sid-b still revoked")
		}

		raw := rawDB(t, dsn)
		var n int
		var stored string
		if err := raw.QueryRow(`SELECT count(*), min(session_hash) FROM revoked_sessions`).Scan(&n, &stored); err != nil {
			t.Fatal(err)
		}
		if n != 2 || strings.Contains(stored, "sid-") {
			t.Errorf("stored %d rows (%q), want 2 hashed ids", n, stored)
		}
		if err := s.Revoke(ctx, "sid-c", clock.Now().Add(time.Hour)); err != nil { // purges the expired sid-a
			t.Fatal(err)
		}
		if err := raw.QueryRow(`SELECT count(*) FROM revoked_sessions`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 2 {
			t.Errorf("%d revocation rows after purge, want 2 (sid-b, sid-c)", n)
		}
	})
}

func TestPing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := openStore(t, b.newDSN(t))
		for range 2 {
			if err := s.Ping(context.Background()); err != nil {
				t.Fatalf("Ping: %v", err)
			}
		}
	})
}

// TestUnavailable is docs/security.md H51: with the store unable to write, Append
// and Ping fail with ErrUnavailable (the portal answers 503 and calls no
// hub) while reads keep working, and writing resumes once it is back.
func TestUnavailable(t *testing.T) {
	t.Run("closed", func(t *testing.T) {
		forEachBackend(t, func(t *testing.T, b backend) {
			s := openStore(t, b.newDSN(t))
			s.Close()
			wantUnavailable(t, s)
		})
	})
	t.Run("sqlite/read-only-file", func(t *testing.T) {
		dsn := backends[0].newDSN(t)
		s := openStore(t, dsn)
		mustAppend(t, s, cancelIntent("r1", "j1"))
		path := strings.TrimPrefix(dsn, "sqlite://")
		// As root, chmod does not stop writes; the immutable flag does, even
		// through descriptors SQLite already holds.
		for _, f := range []string{path, path + "-wal"} {
			if out, err := exec.Command("chattr", "+i", f).CombinedOutput(); err != nil {
				t.Skipf("cannot make %s immutable here (%v: %s)", f, err, out)
			}
			t.Cleanup(func() { exec.Command("chattr", "-i", f).Run() })
		}
		wantUnavailable(t, s)
		if got, err := s.List(context.Background(), Filter{}); err != nil || len(got) != 1 {
			t.Errorf("List on a read-only store = %d entries, %v; want the 1 entry", len(got), err)
		}
		for _, f := range []string{path, path + "-wal"} {
			if out, err := exec.Command("chattr", "-i", f).CombinedOutput(); err != nil {
				t.Fatalf("chattr -i: %v: %s", err, out)
			}
		}
		mustAppend(t, s, cancelIntent("r2", "j2"))
		if err := s.Verify(context.Background()); err != nil {
			t.Errorf("Verify after recovery: %v", err)
		}
	})
	t.Run("postgres/server-stopped", func(t *testing.T) {
		dsn := newPostgresSchema(t)
		proxy := startTCPProxy(t, dsn)
		s := openStore(t, proxy.dsn)
		mustAppend(t, s, cancelIntent("r1", "j1"))
		proxy.stop()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := s.Append(ctx, cancelIntent("r2", "j2")); !errors.Is(err, ErrUnavailable) {
			t.Errorf("Append with the server stopped = %v, want ErrUnavailable", err)
		}
		if err := s.Ping(ctx); !errors.Is(err, ErrUnavailable) {
			t.Errorf("Ping with the server stopped = %v, want ErrUnavailable", err)
		}
		proxy.start(t)
		mustAppend(t, s, cancelIntent("r3", "j3"))
		if head, err := s.VerifyHead(context.Background()); err != nil || head.Seq != 2 {
			t.Errorf("after restart VerifyHead = %+v, %v; want 2 entries intact", head, err)
		}
	})
}

func wantUnavailable(t *testing.T, s *Store) {
	t.Helper()
	if _, err := s.Append(context.Background(), cancelIntent("r-x", "j-x")); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Append = %v, want ErrUnavailable", err)
	}
	if err := s.Ping(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Ping = %v, want ErrUnavailable", err)
	}
}

// tcpProxy stands between the store and PostgreSQL so a test can "stop the
// server" (refuse and cut every connection) without touching the shared one.
type tcpProxy struct {
	addr, target, dsn string
	mu                sync.Mutex
	ln                net.Listener
	conns             []net.Conn
}

func startTCPProxy(t *testing.T, dsn string) *tcpProxy {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{addr: "127.0.0.1:0", target: u.Host}
	p.start(t)
	p.addr = p.ln.Addr().String()
	u.Host = p.addr
	p.dsn = u.String()
	t.Cleanup(p.stop)
	return p
}

func (p *tcpProxy) start(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
}

func (p *tcpProxy) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ln.Close()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}
