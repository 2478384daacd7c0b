package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/assist-video/assist/rooms/bus"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func openTrail(t *testing.T) (*bus.Bus, *Trail) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	log := slog.New(slog.DiscardHandler)
	b, err := bus.Open(ctx, bus.Config{StoreDir: t.TempDir(), Name: "test", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	tr, err := Open(ctx, b, Config{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return b, tr
}

func logAll(t *testing.T, tr *Trail, evs ...Event) {
	t.Helper()
	for _, ev := range evs {
		if err := tr.Log(t.Context(), ev); err != nil {
			t.Fatalf("Log %+v: %v", ev, err)
		}
	}
}

func query(t *testing.T, tr *Trail, f Filter) Page {
	t.Helper()
	p, err := tr.Query(t.Context(), f)
	if err != nil {
		t.Fatalf("Query %+v: %v", f, err)
	}
	return p
}

func ids(evs []Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.ID
	}
	return out
}

var (
	sam    = Actor{Kind: ActorSpecialist, ID: "spc_sam", Name: "Sam"}
	robot  = Actor{Kind: ActorAPIKey, ID: "key_crm", Name: "CRM"}
	system = Actor{Kind: ActorSystem}
)

// seed logs a small history for two organisations, with times a minute apart ending now.
func seed(t *testing.T, tr *Trail) time.Time {
	t.Helper()
	base := time.Now().Add(-4 * time.Minute).UTC()
	at := func(i int) time.Time { return base.Add(time.Duration(i) * 30 * time.Second) }
	logAll(t, tr,
		Event{ID: "a1", Time: at(0), OrgID: "org_a", Actor: sam, Action: ActionSessionCreate, SessionID: "ses_1"},
		Event{ID: "b1", Time: at(1), OrgID: "org_b", Actor: robot, Action: ActionSessionCreate, SessionID: "ses_9"},
		Event{ID: "a2", Time: at(2), OrgID: "org_a", Actor: sam, Action: ActionParticipantAdmit, SessionID: "ses_1", Target: "par_1"},
		Event{ID: "a3", Time: at(3), OrgID: "org_a", Actor: robot, Action: ActionSessionCreate, SessionID: "ses_2"},
		Event{ID: "b2", Time: at(4), OrgID: "org_b", Actor: sam, Action: ActionSessionEnd, SessionID: "ses_9"}, // same actor id, other org
		Event{ID: "a4", Time: at(5), OrgID: "org_a", Actor: sam, Action: ActionSessionEnd, SessionID: "ses_1"},
		Event{ID: "a5", Time: at(6), OrgID: "org_a", Actor: system, Action: ActionRecordingStop, SessionID: "ses_2"},
	)
	return base
}

func TestQueriesNeverCrossOrganisations(t *testing.T) {
	_, tr := openTrail(t)
	seed(t, tr)
	for org, want := range map[string][]string{
		"org_a": {"a1", "a2", "a3", "a4", "a5"},
		"org_b": {"b1", "b2"},
		"org_c": {},
	} {
		p := query(t, tr, Filter{OrgID: org})
		if !slices.Equal(ids(p.Events), want) || p.Next != "" {
			t.Errorf("%s: %v next=%q, want %v", org, ids(p.Events), p.Next, want)
		}
	}
	t.Run("even when filtering on an id both share", func(t *testing.T) {
		p := query(t, tr, Filter{OrgID: "org_b", ActorID: "spc_sam"})
		if !slices.Equal(ids(p.Events), []string{"b2"}) {
			t.Fatalf("%v", ids(p.Events))
		}
	})
	t.Run("and an organisation id cannot be a wildcard", func(t *testing.T) {
		for _, org := range []string{"*", ">", "org_a.>", "org_a.*", "", "ORG_A"} {
			if _, err := tr.Query(t.Context(), Filter{OrgID: org}); !errors.Is(err, ErrInvalidFilter) {
				t.Errorf("%q: %v", org, err)
			}
			if err := tr.Log(t.Context(), Event{OrgID: org, Actor: sam, Action: ActionSessionCreate}); !errors.Is(err, ErrInvalidEvent) {
				t.Errorf("Log to %q: %v", org, err)
			}
		}
	})
}

func TestFilters(t *testing.T) {
	_, tr := openTrail(t)
	base := seed(t, tr)
	cases := []struct {
		name string
		f    Filter
		want []string
	}{
		{"by action", Filter{Action: ActionSessionCreate}, []string{"a1", "a3"}},
		{"by actor", Filter{ActorID: "spc_sam"}, []string{"a1", "a2", "a4"}},
		{"by session", Filter{SessionID: "ses_2"}, []string{"a3", "a5"}},
		{"by action and session", Filter{Action: ActionSessionEnd, SessionID: "ses_1"}, []string{"a4"}},
		{"from a time, inclusive", Filter{From: base.Add(60 * time.Second)}, []string{"a2", "a3", "a4", "a5"}},
		{"to a time, exclusive", Filter{To: base.Add(90 * time.Second)}, []string{"a1", "a2"}},
		{"between times", Filter{From: base.Add(80 * time.Second), To: base.Add(160 * time.Second)}, []string{"a3", "a4"}},
		{"an action nobody took", Filter{Action: ActionFileDownload}, []string{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.f.OrgID = "org_a"
			p := query(t, tr, c.f)
			if !slices.Equal(ids(p.Events), c.want) || p.Next != "" {
				t.Fatalf("got %v next=%q, want %v", ids(p.Events), p.Next, c.want)
			}
		})
	}
	t.Run("refuses bad filters", func(t *testing.T) {
		for name, f := range map[string]Filter{
			"a bad action":         {OrgID: "org_a", Action: "session.*"},
			"a bad cursor":         {OrgID: "org_a", After: "abc"},
			"a zero cursor":        {OrgID: "org_a", After: "0"},
			"a negative limit":     {OrgID: "org_a", Limit: -1},
			"an empty time window": {OrgID: "org_a", From: base, To: base},
		} {
			if _, err := tr.Query(t.Context(), f); !errors.Is(err, ErrInvalidFilter) {
				t.Errorf("%s: %v", name, err)
			}
		}
	})
}

func TestPagesFollowTheCursor(t *testing.T) {
	_, tr := openTrail(t)
	var want []string
	for i := range 25 {
		id := fmt.Sprintf("e%02d", i)
		want = append(want, id)
		logAll(t, tr,
			Event{ID: id, OrgID: "org_a", Actor: sam, Action: ActionSnapshotTake},
			Event{ID: "other" + id, OrgID: "org_b", Actor: sam, Action: ActionSnapshotTake})
	}
	var got []string
	var sizes []int
	f := Filter{OrgID: "org_a", Limit: 10}
	for range 10 {
		p := query(t, tr, f)
		got = append(got, ids(p.Events)...)
		sizes = append(sizes, len(p.Events))
		if p.Next == "" {
			break
		}
		f.After = p.Next
	}
	if !slices.Equal(got, want) || !slices.Equal(sizes, []int{10, 10, 5}) {
		t.Fatalf("pages %v gave %v", sizes, got)
	}

	t.Run("a query reads a bounded number of entries and says where to go on", func(t *testing.T) {
		tr.maxScan = 7
		defer func() { tr.maxScan = 10_000 }()
		logAll(t, tr, Event{ID: "needle", OrgID: "org_a", Actor: robot, Action: ActionSnapshotTake})
		f := Filter{OrgID: "org_a", ActorID: robot.ID, Limit: 10}
		var found []string
		pages := 0
		for ; pages < 10; pages++ {
			p := query(t, tr, f)
			found = append(found, ids(p.Events)...)
			if p.Next == "" {
				break
			}
			f.After = p.Next
		}
		if !slices.Equal(found, []string{"needle"}) || pages != 3 { // 26 entries, 7 a query
			t.Fatalf("found %v in %d pages", found, pages+1)
		}
	})
}

func TestLogFillsInAndChecks(t *testing.T) {
	_, tr := openTrail(t)
	before := time.Now()
	long := strings.Repeat("é", maxDetail) // two bytes each: must be cut at a character
	logAll(t, tr, Event{OrgID: "org_a", Actor: sam, Action: ActionSettingsChange, Detail: long, UserAgent: strings.Repeat("u", 5000)})
	p := query(t, tr, Filter{OrgID: "org_a"})
	if len(p.Events) != 1 {
		t.Fatalf("%+v", p)
	}
	ev := p.Events[0]
	if !strings.HasPrefix(ev.ID, "aud_") || ev.Time.Before(before.Add(-time.Second)) || ev.Time.After(time.Now()) {
		t.Fatalf("id and time: %q %v", ev.ID, ev.Time)
	}
	if len(ev.Detail) > maxDetail || len(ev.Detail) < maxDetail-1 || !strings.HasPrefix(long, ev.Detail) || len(ev.UserAgent) != maxUserAgent {
		t.Fatalf("cut to %d and %d bytes", len(ev.Detail), len(ev.UserAgent))
	}

	t.Run("logging the same id again stores it once", func(t *testing.T) {
		again := Event{ID: "dup_1", OrgID: "org_d", Actor: sam, Action: ActionSignIn}
		logAll(t, tr, again, again)
		if p := query(t, tr, Filter{OrgID: "org_d"}); len(p.Events) != 1 {
			t.Fatalf("%v", ids(p.Events))
		}
	})
	t.Run("refuses malformed events", func(t *testing.T) {
		for name, ev := range map[string]Event{
			"no actor kind":      {OrgID: "org_a", Action: ActionSignIn},
			"an unknown actor":   {OrgID: "org_a", Action: ActionSignIn, Actor: Actor{Kind: "robot"}},
			"no action":          {OrgID: "org_a", Actor: sam},
			"a wildcard action":  {OrgID: "org_a", Actor: sam, Action: "session.>"},
			"an empty word":      {OrgID: "org_a", Actor: sam, Action: "session..end"},
			"a bad id":           {ID: "a b", OrgID: "org_a", Actor: sam, Action: ActionSignIn},
			"a time long ago":    {OrgID: "org_a", Actor: sam, Action: ActionSignIn, Time: time.Now().Add(-time.Hour)},
			"a time in a future": {OrgID: "org_a", Actor: sam, Action: ActionSignIn, Time: time.Now().Add(time.Hour)},
		} {
			if err := tr.Log(t.Context(), ev); !errors.Is(err, ErrInvalidEvent) {
				t.Errorf("%s: %v", name, err)
			}
		}
	})
}

func TestExports(t *testing.T) {
	_, tr := openTrail(t)
	seed(t, tr)
	logAll(t, tr,
		Event{ID: "x1", OrgID: "org_a", Actor: Actor{Kind: ActorCustomer, Name: "=HYPERLINK(\"http://evil\",\"x\")"},
			Action: ActionFileDownload, Target: "+1 555", Detail: "-2+3", UserAgent: "@SUM(A1)", RemoteAddr: "203.0.113.7"},
		Event{ID: "x2", OrgID: "org_a", Actor: sam, Action: ActionSettingsChange, Detail: "line one\nline \"two\", with comma"},
	)

	t.Run("NDJSON has one entry per line", func(t *testing.T) {
		var buf bytes.Buffer
		if err := tr.ExportNDJSON(t.Context(), &buf, Filter{OrgID: "org_a"}); err != nil {
			t.Fatal(err)
		}
		var got []Event
		sc := bufio.NewScanner(&buf)
		for sc.Scan() {
			var ev Event
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				t.Fatalf("line %q: %v", sc.Text(), err)
			}
			got = append(got, ev)
		}
		if !slices.Equal(ids(got), []string{"a1", "a2", "a3", "a4", "a5", "x1", "x2"}) {
			t.Fatalf("%v", ids(got))
		}
		if got[5].Actor.Name != "=HYPERLINK(\"http://evil\",\"x\")" || got[6].Detail != "line one\nline \"two\", with comma" {
			t.Fatalf("NDJSON keeps text as it is: %+v %+v", got[5], got[6])
		}
	})

	t.Run("CSV has a header, a row per entry, and no live formulas", func(t *testing.T) {
		var buf bytes.Buffer
		if err := tr.ExportCSV(t.Context(), &buf, Filter{OrgID: "org_a", Action: ActionFileDownload}); err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(&buf).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 2 || !slices.Equal(rows[0], csvHeader[:]) {
			t.Fatalf("rows: %q", rows)
		}
		row := map[string]string{}
		for i, h := range rows[0] {
			row[h] = rows[1][i]
		}
		want := map[string]string{
			"id": "x1", "org_id": "org_a", "actor_kind": "customer", "action": "file.download",
			"actor_name": "'=HYPERLINK(\"http://evil\",\"x\")", "target": "'+1 555", "detail": "'-2+3",
			"user_agent": "'@SUM(A1)", "remote_addr": "203.0.113.7",
		}
		for k, v := range want {
			if row[k] != v {
				t.Errorf("%s = %q, want %q", k, row[k], v)
			}
		}
		if _, err := time.Parse(time.RFC3339Nano, row["time"]); err != nil {
			t.Errorf("time %q: %v", row["time"], err)
		}
	})

	t.Run("CSV quotes text with newlines, quotes and commas", func(t *testing.T) {
		var buf bytes.Buffer
		if err := tr.ExportCSV(t.Context(), &buf, Filter{OrgID: "org_a", Action: ActionSettingsChange}); err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(&buf).ReadAll()
		if err != nil || len(rows) != 2 || rows[1][11] != "line one\nline \"two\", with comma" {
			t.Fatalf("%v %q", err, rows)
		}
	})

	t.Run("exports go past one page and stop at the limit", func(t *testing.T) {
		for i := range 30 {
			logAll(t, tr, Event{ID: fmt.Sprintf("bulk%02d", i), OrgID: "org_e", Actor: system, Action: ActionRecordingStart})
		}
		tr.maxScan = 4 // forces several queries
		defer func() { tr.maxScan = 10_000 }()
		var buf bytes.Buffer
		if err := tr.ExportNDJSON(t.Context(), &buf, Filter{OrgID: "org_e"}); err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(buf.String(), "\n"); n != 30 {
			t.Fatalf("%d lines", n)
		}
		buf.Reset()
		if err := tr.ExportCSV(t.Context(), &buf, Filter{OrgID: "org_e", Limit: 9}); err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(buf.String(), "\n"); n != 10 {
			t.Fatalf("%d lines with the header", n)
		}
	})
}

func TestTheStreamRefusesDeleteAndPurge(t *testing.T) {
	b, tr := openTrail(t)
	seed(t, tr)
	ctx := t.Context()
	stream, err := b.JS.Stream(ctx, streamName)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.DeleteMsg(ctx, 1); err == nil {
		t.Error("a message was deleted")
	}
	if err := stream.SecureDeleteMsg(ctx, 2); err == nil {
		t.Error("a message was erased")
	}
	if err := stream.Purge(ctx); err == nil {
		t.Error("the stream was purged")
	}
	if _, err := Open(ctx, b, Config{Retention: 24 * time.Hour}); err != nil { // reopening keeps it append-only
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Config.DenyDelete || !info.Config.DenyPurge || info.State.Msgs != 7 {
		t.Fatalf("config %+v, %d messages", info.Config, info.State.Msgs)
	}
	if p := query(t, tr, Filter{OrgID: "org_a"}); len(p.Events) != 5 {
		t.Fatalf("%v", ids(p.Events))
	}
}
