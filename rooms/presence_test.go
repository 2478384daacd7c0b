package rooms

import (
	"testing"
	"time"
)

func TestPresenceEffective(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	grace := time.Minute
	open := map[string]string{"con_1": "node-a"}
	for _, tc := range []struct {
		name string
		rec  *PresenceRecord
		want string
	}{
		{"nobody recorded is offline", nil, PresenceOffline},
		{"a console never opened is offline", &PresenceRecord{Manual: PresenceAvailable}, PresenceOffline},
		{"an open console shows the manual status", &PresenceRecord{Manual: PresenceAway, Consoles: open}, PresenceAway},
		{"no manual status is available", &PresenceRecord{Consoles: open}, PresenceAvailable},
		{"in a session is busy whatever was chosen", &PresenceRecord{Manual: PresenceAway, Consoles: open, Sessions: map[string]string{"ses_1": "con_2"}}, PresenceBusy},
		{"in a session without a console is still busy", &PresenceRecord{Sessions: map[string]string{"ses_1": "con_2"}}, PresenceBusy},
		{"within the grace after the last console closed nothing changes", &PresenceRecord{Manual: PresenceAway, LastConsoleAt: now.Add(-30 * time.Second)}, PresenceAway},
		{"after the grace the specialist is offline", &PresenceRecord{Manual: PresenceAway, LastConsoleAt: now.Add(-2 * time.Minute)}, PresenceOffline},
		{"marked offline is offline", &PresenceRecord{Manual: PresenceAvailable, LastConsoleAt: now, Offline: true}, PresenceOffline},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.rec.Effective(now, grace); got != tc.want {
				t.Fatalf("%s, want %s", got, tc.want)
			}
		})
	}
}

func TestUnreadCountsOthersMessagesAfterTheMarker(t *testing.T) {
	msgs := []TeamMessage{
		{Seq: 1, From: "spc_b", To: TeamChannel},
		{Seq: 2, From: "spc_a", To: TeamChannel},
		{Seq: 3, From: "spc_b", To: "spc_a"},
		{Seq: 4, From: "spc_c", To: TeamChannel},
		{Seq: 5, From: "spc_a", To: "spc_c"},
	}
	got := Unread(msgs, "spc_a", ReadMarkers{TeamChannel: 1})
	if got[TeamChannel] != 1 || got["spc_b"] != 1 || got["spc_c"] != 0 {
		t.Fatalf("unread %v", got)
	}
}

func TestPresenceRecordsAcrossConsolesSessionsAndRestarts(t *testing.T) {
	st := openStore(t)
	ctx := t.Context()
	p, err := OpenPresence(ctx, st.bus)
	if err != nil {
		t.Fatal(err)
	}
	const org, sp, grace = "org_one", "spc_ann", time.Hour
	status := func() string {
		t.Helper()
		all, err := p.OrgPresence(ctx, org)
		if err != nil {
			t.Fatal(err)
		}
		return all[sp].Effective(time.Now(), grace)
	}
	if _, err := p.ConsoleOpened(ctx, org, sp, "con_1", "node-a", grace); err != nil {
		t.Fatal(err)
	}
	if _, err := p.ConsoleOpened(ctx, org, sp, "con_2", "node-b", grace); err != nil {
		t.Fatal(err)
	}
	if _, err := p.SetManualPresence(ctx, org, sp, PresenceAway, grace); err != nil || status() != PresenceAway {
		t.Fatalf("away: %v %s", err, status())
	}
	if _, err := p.SetManualPresence(ctx, org, sp, PresenceOffline, grace); err == nil {
		t.Fatal("offline was chosen by hand")
	}
	if _, err := p.EnteredSession(ctx, org, sp, "ses_1", "node-a", "con_9", grace); err != nil || status() != PresenceBusy {
		t.Fatalf("in a session: %v %s", err, status())
	}
	if rec, _ := p.LeftSession(ctx, org, sp, "ses_1", "node-a", "con_old", grace); len(rec.Sessions) != 1 {
		t.Fatal("an older socket's leaving ended the busy state")
	}
	// node-a restarts: its console and its session socket are gone; node-b's console stays.
	if err := p.DropNodeConsoles(ctx, "node-a", grace); err != nil {
		t.Fatal(err)
	}
	all, _ := p.OrgPresence(ctx, org)
	if rec := all[sp]; len(rec.Sessions) != 0 || len(rec.Consoles) != 1 || rec.Consoles["con_2"] != "node-b" || status() != PresenceAway {
		t.Fatalf("after node-a restarted: %+v", rec)
	}
	if rec, _ := p.ConsoleClosed(ctx, org, sp, "con_2", grace); rec.LastConsoleAt.IsZero() || status() != PresenceAway {
		t.Fatalf("within the grace: %+v", rec)
	}
	if rec, _ := p.MarkOfflineIfGone(ctx, org, sp, grace); rec.Offline {
		t.Fatal("marked offline within the grace")
	}
	if rec, _ := p.MarkOfflineIfGone(ctx, org, sp, 0); !rec.Offline || rec.Status != PresenceOffline {
		t.Fatalf("after the grace: %+v", rec)
	}
	if other, _ := p.OrgPresence(ctx, "org_two"); len(other) != 0 {
		t.Fatalf("another organisation sees %+v", other)
	}
}
