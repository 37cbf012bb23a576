package rollout

import (
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/hub"
)

// Store keeps rollouts in tables of their own beside the audit trail (the
// same database, so that a transition and its audit entry commit in one
// transaction through audit.Store.AppendWith). It speaks SQLite and
// PostgreSQL with $N placeholders and portable SQL.
type Store struct {
	db      *sql.DB
	dialect string
}

// OpenStore applies the rollout tables' migrations to db ("sqlite" or
// "postgres", as audit.Store.Dialect says) and returns the store.
func OpenStore(ctx context.Context, db *sql.DB, dialect string) (*Store, error) {
	if dialect != "sqlite" && dialect != "postgres" {
		return nil, fmt.Errorf("rollout store: unknown dialect %q", dialect)
	}
	if err := migrate(ctx, db, dialect); err != nil {
		return nil, fmt.Errorf("rollout store: migrate: %w", err)
	}
	return &Store{db: db, dialect: dialect}, nil
}

// querier is a *sql.DB or a *sql.Tx.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// errStale: the row changed since it was read (another replica, a page, an
// engine step); the caller reads again rather than overwrite.
var errStale = errors.New("rollout changed meanwhile")

// ErrStale is errStale for the pages: a person's action that kept meeting
// a changed row gives up with it, and is answered "try again".
var ErrStale = errStale

// record is one rollouts row.
type record struct {
	id, hub  string
	spec     Spec
	author   audit.Actor
	status   Status
	haltedBy audit.Actor
	devices  int
	sizes    []int  // each wave's size; nil until planned
	gated    []bool // each wave's approval gate; nil until planned
	waiting  string
	created  time.Time
	version  int64
	// planSecret keys the device order with the id (NewPlan); drawn at
	// creation, never shown.
	planSecret string
}

// planned reports whether the waves are known (the device list frozen, or
// the one-wave plan made).
func (r *record) planned() bool { return len(r.sizes) > 0 }

func (r *record) machine() Machine {
	return Machine{Waves: len(r.sizes), Gated: r.gated, Bake: r.spec.Bake}
}

// jobState is the engine's view of one hub job of a rollout.
type jobState string

const (
	jobPending    jobState = "pending"    // not yet sent
	jobCreating   jobState = "creating"   // a create may be on its way: resolve by reading the job
	jobCreated    jobState = "created"    // the hub has it
	jobRefused    jobState = "refused"    // the hub refused it (not a busy slot)
	jobCancelling jobState = "cancelling" // a cancel may be on its way
	jobCancelled  jobState = "cancelled"  // cancelled before it ran, or never sent after a halt
	jobFinished   jobState = "finished"   // the hub says it is over
)

// done reports whether the job will not change any more.
func (s jobState) done() bool { return s == jobRefused || s == jobCancelled || s == jobFinished }

// jobRow is one rollout_jobs row.
type jobRow struct {
	id                  string
	wave, part, devices int
	state               jobState
	start               time.Time // startTime sent; zero = now
	status              hub.JobStatus
	stats               *hub.DeviceJobStatistics
	stops               time.Time // when the hub stops it by itself
	created, finished   time.Time // when the hub took it; when the engine saw it over
	updated             time.Time // when the row was last written
}

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain structs and slices are encoded here
	}
	return string(b)
}

const rolloutColumns = `id, hub, spec, author, state, wave, approved, halt, note, since_us, halted_by,
	devices, sizes, gated, waiting, created_us, version, plan_secret`

func (s *Store) insertRollout(ctx context.Context, q querier, r record) error {
	spec, err := encodeSpec(r.spec)
	if err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, `INSERT INTO rollouts (`+rolloutColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, 1, $17)`,
		r.id, r.hub, string(spec), jsonText(r.author), string(r.status.State), r.status.Wave, boolInt(r.status.Approved),
		string(r.status.Halt), r.status.Note, micros(r.status.Since), "", r.devices, sizesText(r.sizes), gatedText(r.gated),
		r.waiting, micros(r.created), r.planSecret)
	return err
}

func sizesText(s []int) string {
	if s == nil {
		return ""
	}
	return jsonText(s)
}

func gatedText(g []bool) string {
	if g == nil {
		return ""
	}
	return jsonText(g)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

type scanner interface{ Scan(dest ...any) error }

func scanRecord(row scanner) (record, error) {
	var (
		r                                   record
		spec, author, state, halt, haltedBy string
		sizes, gated                        string
		approved                            int
		since, created                      int64
	)
	err := row.Scan(&r.id, &r.hub, &spec, &author, &state, &r.status.Wave, &approved, &halt, &r.status.Note,
		&since, &haltedBy, &r.devices, &sizes, &gated, &r.waiting, &created, &r.version, &r.planSecret)
	if err != nil {
		return record{}, err
	}
	if r.spec, err = decodeSpec([]byte(spec)); err != nil {
		return record{}, err
	}
	if err := json.Unmarshal([]byte(author), &r.author); err != nil {
		return record{}, fmt.Errorf("stored author: %w", err)
	}
	if haltedBy != "" {
		if err := json.Unmarshal([]byte(haltedBy), &r.haltedBy); err != nil {
			return record{}, fmt.Errorf("stored halted_by: %w", err)
		}
	}
	if sizes != "" {
		if err := json.Unmarshal([]byte(sizes), &r.sizes); err != nil {
			return record{}, fmt.Errorf("stored sizes: %w", err)
		}
	}
	if gated != "" {
		if err := json.Unmarshal([]byte(gated), &r.gated); err != nil {
			return record{}, fmt.Errorf("stored gates: %w", err)
		}
	}
	r.status.State, r.status.Approved, r.status.Halt = State(state), approved != 0, HaltReason(halt)
	r.status.Since, r.created = fromMicros(since), fromMicros(created)
	return r, nil
}

// load reads one rollout; ErrNotFound when there is none.
func (s *Store) load(ctx context.Context, q querier, id string) (record, error) {
	r, err := scanRecord(q.QueryRowContext(ctx, `SELECT `+rolloutColumns+` FROM rollouts WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return record{}, ErrNotFound
	}
	return r, err
}

// list reads rollouts newest first: of one hub ("" = every hub), in one
// state ("" = every state), or, with work, those the engine still has
// something to do for: every non-final one, and halted ones with a job
// still to cancel or to watch until it stops.
func (s *Store) list(ctx context.Context, hubName string, state State, work bool) ([]record, error) {
	var where []string
	var args []any
	if hubName != "" {
		args = append(args, hubName)
		where = append(where, fmt.Sprintf("hub = $%d", len(args)))
	}
	if state != "" {
		args = append(args, string(state))
		where = append(where, fmt.Sprintf("state = $%d", len(args)))
	}
	if work {
		where = append(where, `(state NOT IN ('completed', 'halted') OR (state = 'halted' AND EXISTS (
			SELECT 1 FROM rollout_jobs j WHERE j.rollout = rollouts.id AND j.state NOT IN ('refused', 'cancelled', 'finished'))))`)
	}
	query := `SELECT ` + rolloutColumns + ` FROM rollouts`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	rows, err := s.db.QueryContext(ctx, query+` ORDER BY created_us DESC, id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// setStatus writes a transition if the row is still at version; errStale
// otherwise. haltedBy is written with a halt.
func (s *Store) setStatus(ctx context.Context, q querier, r record, next Status) error {
	haltedBy := ""
	if next.State == Halted {
		haltedBy = jsonText(r.haltedBy)
	}
	res, err := q.ExecContext(ctx, `UPDATE rollouts SET state = $1, wave = $2, approved = $3, halt = $4, note = $5,
		since_us = $6, halted_by = $7, waiting = '', version = version + 1 WHERE id = $8 AND version = $9`,
		string(next.State), next.Wave, boolInt(next.Approved), string(next.Halt), next.Note, micros(next.Since),
		haltedBy, r.id, r.version)
	return affectedOne(res, err)
}

func affectedOne(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n != 1 {
		return errStale
	}
	return nil
}

// setPlan stores the frozen plan: the device list (nil for a one-wave
// rollout, whose job carries the author's condition), the wave sizes and
// gates.
func (s *Store) setPlan(ctx context.Context, q querier, r record, ids []string) error {
	if ids != nil {
		blob, err := packIDs(ids)
		if err != nil {
			return err
		}
		if _, err := q.ExecContext(ctx, `INSERT INTO rollout_devices (rollout, ids) VALUES ($1, $2)`, r.id, blob); err != nil {
			return err
		}
	}
	res, err := q.ExecContext(ctx, `UPDATE rollouts SET devices = $1, sizes = $2, gated = $3, version = version + 1
		WHERE id = $4 AND version = $5`, r.devices, sizesText(r.sizes), gatedText(r.gated), r.id, r.version)
	return affectedOne(res, err)
}

// setWaiting records why nothing moves; it is advice for the page, so it
// changes no version.
func (s *Store) setWaiting(ctx context.Context, id, text string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE rollouts SET waiting = $1 WHERE id = $2 AND waiting <> $1`, text, id)
	return err
}

// packIDs and unpackIDs keep a device list as one gzipped, newline
// separated value: device ids are printable ASCII, so a newline never
// occurs in one (NewPlan refuses any that would).
func packIDs(ids []string) ([]byte, error) {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := io.WriteString(w, strings.Join(ids, "\n")); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func unpackIDs(blob []byte) ([]string, error) {
	r, err := gzip.NewReader(bytes.NewReader(blob))
	if err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	return strings.Split(string(raw), "\n"), nil
}

func (s *Store) deviceIDs(ctx context.Context, id string) ([]string, error) {
	var blob []byte
	if err := s.db.QueryRowContext(ctx, `SELECT ids FROM rollout_devices WHERE rollout = $1`, id).Scan(&blob); err != nil {
		return nil, err
	}
	return unpackIDs(blob)
}

const jobColumns = `job_id, wave, part, devices, state, start_us, status, stats, stops_us, created_us, finished_us, updated_us`

func (s *Store) jobs(ctx context.Context, q querier, rid string) ([]jobRow, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+jobColumns+` FROM rollout_jobs WHERE rollout = $1 ORDER BY wave, part`, rid)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []jobRow
	for rows.Next() {
		var (
			j             jobRow
			state, status string
			stats         string
			start, stops  int64
			created, done int64
			updated       int64
		)
		if err := rows.Scan(&j.id, &j.wave, &j.part, &j.devices, &state, &start, &status, &stats, &stops, &created, &done, &updated); err != nil {
			return nil, err
		}
		j.state, j.status, j.start, j.stops = jobState(state), hub.JobStatus(status), fromMicros(start), fromMicros(stops)
		j.created, j.finished, j.updated = fromMicros(created), fromMicros(done), fromMicros(updated)
		if stats != "" {
			j.stats = new(hub.DeviceJobStatistics)
			if err := json.Unmarshal([]byte(stats), j.stats); err != nil {
				return nil, fmt.Errorf("stored statistics of %s: %w", j.id, err)
			}
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// insertJobs adds a wave's jobs as pending; rows already there are kept
// (a step replayed after a crash).
func (s *Store) insertJobs(ctx context.Context, q querier, rid string, rows []jobRow, now time.Time) error {
	for _, j := range rows {
		if _, err := q.ExecContext(ctx, `INSERT INTO rollout_jobs (job_id, rollout, wave, part, devices, state, start_us, updated_us)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (job_id) DO NOTHING`,
			j.id, rid, j.wave, j.part, j.devices, string(jobPending), micros(j.start), micros(now)); err != nil {
			return err
		}
	}
	return nil
}

// setJob writes what the engine now knows of a job; from is the state it
// read, so that two drivers cannot both move one job (errStale).
func (s *Store) setJob(ctx context.Context, j jobRow, from jobState, now time.Time) error {
	stats := ""
	if j.stats != nil {
		stats = jsonText(j.stats)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE rollout_jobs SET state = $1, start_us = $2, status = $3, stats = $4,
		stops_us = $5, created_us = $6, finished_us = $7, updated_us = $8 WHERE job_id = $9 AND state = $10`,
		string(j.state), micros(j.start), string(j.status), stats, micros(j.stops), micros(j.created), micros(j.finished),
		micros(now), j.id, string(from))
	return affectedOne(res, err)
}

func (s *Store) approvals(ctx context.Context, rid string) (map[int]audit.Actor, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT wave, actor FROM rollout_approvals WHERE rollout = $1`, rid)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int]audit.Actor{}
	for rows.Next() {
		var wave int
		var actor string
		if err := rows.Scan(&wave, &actor); err != nil {
			return nil, err
		}
		var a audit.Actor
		if err := json.Unmarshal([]byte(actor), &a); err != nil {
			return nil, fmt.Errorf("stored approver: %w", err)
		}
		out[wave] = a
	}
	return out, rows.Err()
}

func (s *Store) insertApproval(ctx context.Context, q querier, rid string, wave int, a audit.Actor, at time.Time) error {
	_, err := q.ExecContext(ctx, `INSERT INTO rollout_approvals (rollout, wave, actor, at_us) VALUES ($1, $2, $3, $4)`,
		rid, wave, jsonText(a), micros(at))
	return err
}

// storedVerdict is a verdict that decided something, with its wave.
type storedVerdict struct {
	wave int
	v    Verdict
}

func (s *Store) verdicts(ctx context.Context, rid string) ([]storedVerdict, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT wave, rule, fired, text FROM rollout_verdicts WHERE rollout = $1 ORDER BY seq`, rid)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []storedVerdict
	for rows.Next() {
		var sv storedVerdict
		var rule string
		var fired int
		if err := rows.Scan(&sv.wave, &rule, &fired, &sv.v.Text); err != nil {
			return nil, err
		}
		sv.v.Rule, sv.v.Fired, sv.v.Evaluated = HaltReason(rule), fired != 0, true
		out = append(out, sv)
	}
	return out, rows.Err()
}

func (s *Store) addVerdict(ctx context.Context, q querier, rid string, wave int, v Verdict, at time.Time) error {
	_, err := q.ExecContext(ctx, `INSERT INTO rollout_verdicts (rollout, seq, wave, rule, fired, text, at_us)
		VALUES ($1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM rollout_verdicts WHERE rollout = $1), $2, $3, $4, $5, $6)`,
		rid, wave, string(v.Rule), boolInt(v.Fired), v.Text, micros(at))
	return err
}

// takeLease takes or renews the engine lease for owner until until, in one
// UPDATE: it succeeds when the lease has expired or owner already holds
// it, so two replicas racing for it cannot both win.
func (s *Store) takeLease(ctx context.Context, owner string, now, until time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE rollout_lease SET owner = $1, expires_us = $2
		WHERE name = 'engine' AND (expires_us < $3 OR owner = $1)`, owner, micros(until), micros(now))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// releaseLease gives the lease up on a clean shutdown, so another replica
// need not wait for it to expire.
func (s *Store) releaseLease(ctx context.Context, owner string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE rollout_lease SET expires_us = 0 WHERE name = 'engine' AND owner = $1`, owner)
	return err
}
