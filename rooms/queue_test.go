package rooms

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestQueueStateOrdersAnOrganisationByArrival(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 9, 0, 0, 0, time.UTC)
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	q := newQueueState("org_a")
	q.apply("ses_1", &Session{ID: "ses_1", State: SessionWaiting, Participants: []Participant{
		{ID: "par_ann", Role: RoleCustomer, State: ParticipantWaiting, JoinedAt: at(0)},
		{ID: "par_cid", Role: RoleCustomer, State: ParticipantWaiting, JoinedAt: at(4)},
	}})
	q.apply("ses_2", &Session{ID: "ses_2", State: SessionWaiting, Participants: []Participant{
		{ID: "par_sam", Role: RoleSpecialist, State: ParticipantInCall, JoinedAt: at(1)},
		// Reconnecting to the waiting room keeps the place.
		{ID: "par_bob", Role: RoleCustomer, State: ParticipantReconnecting, ResumeState: ParticipantWaiting, JoinedAt: at(2)},
	}})
	snap := q.snapshot()
	want := map[string]int{"par_ann": 1, "par_bob": 2, "par_cid": 3, "par_sam": 0}
	for id, pos := range want {
		if got := snap.Position(id); got != pos {
			t.Errorf("%s is at %d, want %d", id, got, pos)
		}
	}
	if snap.Length != 3 {
		t.Errorf("length = %d, want 3", snap.Length)
	}
	if _, known := snap.EstimatedWait(1); known {
		t.Error("an estimate without any admission")
	}

	t.Run("an admission moves everyone up and gives an estimate", func(t *testing.T) {
		taken := at(6)
		q.apply("ses_1", &Session{ID: "ses_1", State: SessionActive, Participants: []Participant{
			{ID: "par_ann", Role: RoleCustomer, State: ParticipantInCall, JoinedAt: at(0), AdmittedAt: &taken},
			{ID: "par_cid", Role: RoleCustomer, State: ParticipantWaiting, JoinedAt: at(4)},
		}})
		snap := q.snapshot()
		if snap.Position("par_bob") != 1 || snap.Position("par_cid") != 2 || snap.Position("par_ann") != 0 {
			t.Fatalf("positions bob %d cid %d ann %d", snap.Position("par_bob"), snap.Position("par_cid"), snap.Position("par_ann"))
		}
		if d, ok := snap.EstimatedWait(2); !ok || d != 12*time.Minute {
			t.Fatalf("estimate for place 2 = %v %v, want 12m (Ann was 6m at the head of the line)", d, ok)
		}
	})

	t.Run("an ended or deleted session leaves the line", func(t *testing.T) {
		q.apply("ses_2", nil)
		q.apply("ses_1", &Session{ID: "ses_1", State: SessionEnded})
		if snap := q.snapshot(); snap.Length != 0 || snap.Position("par_bob") != 0 {
			t.Fatalf("snapshot = %+v", snap)
		}
	})
}

func TestPerPlaceIsTheMedianTimeAtTheHeadOfTheLine(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 9, 0, 0, 0, time.UTC)
	q := newQueueState("org_a")
	// Three customers arrive together; they are admitted 2, 3 and 10 minutes later. The heads
	// of the line stood there 2m, 1m and 7m: the median is 2m.
	for i, m := range []int{2, 3, 10} {
		q.admitted(admission{id: string(rune('a' + i)), arrived: t0, taken: t0.Add(time.Duration(m) * time.Minute)})
	}
	// A record seen again changes nothing.
	q.admitted(admission{id: "a", arrived: t0, taken: t0.Add(2 * time.Minute)})
	if d, ok := perPlace(q.admissions); !ok || d != 2*time.Minute {
		t.Fatalf("per place = %v %v, want 2m", d, ok)
	}
	for i := range 2 * recentAdmissions {
		q.admitted(admission{id: string(rune('A' + i)), arrived: t0, taken: t0.Add(time.Hour + time.Duration(i)*time.Minute)})
	}
	if len(q.admissions) != recentAdmissions || !q.admissions[0].taken.Equal(t0.Add(time.Hour+time.Duration(recentAdmissions)*time.Minute)) {
		t.Fatalf("kept %d admissions from %v, want the latest %d", len(q.admissions), q.admissions[0].taken, recentAdmissions)
	}
}

func TestWatchQueueFollowsTheOrganisationOnly(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	var mu sync.Mutex
	var last *QueueSnapshot
	w, err := s.WatchQueue("org_a", 20*time.Millisecond, func(q *QueueSnapshot) {
		mu.Lock()
		last = q
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	waitFor := func(what string, ok func(*QueueSnapshot) bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			mu.Lock()
			q := last
			mu.Unlock()
			if q != nil && ok(q) && w.Snapshot() == q {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no snapshot where %s within 10s (last %+v)", what, q)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	join := func(org string) (*Session, *Participant) {
		t.Helper()
		sess, err := s.CreateSession(ctx, org)
		if err != nil {
			t.Fatal(err)
		}
		sess, p, err := s.Join(ctx, org, sess.ID, JoinRequest{Role: RoleCustomer, Key: "link:" + sess.ID})
		if err != nil {
			t.Fatal(err)
		}
		return sess, p
	}
	s1, ann := join("org_a")
	_, other := join("org_b")
	_, bob := join("org_a")
	waitFor("Ann and Bob wait in org_a", func(q *QueueSnapshot) bool {
		return q.Length == 2 && q.Position(ann.ID) == 1 && q.Position(bob.ID) == 2 && q.Position(other.ID) == 0
	})
	if _, err := s.Admit(ctx, "org_a", s1.ID, ann.ID, "par_sam"); err != nil {
		t.Fatal(err)
	}
	waitFor("Bob is next, with an estimate", func(q *QueueSnapshot) bool {
		_, known := q.EstimatedWait(1)
		return q.Length == 1 && q.Position(bob.ID) == 1 && known
	})
}

func TestQueueStateIgnoresAnOlderRecord(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 9, 0, 0, 0, time.UTC)
	q := newQueueState("org_a")
	waiting := &Session{ID: "ses_1", State: SessionWaiting, Participants: []Participant{
		{ID: "par_ann", Role: RoleCustomer, State: ParticipantWaiting, JoinedAt: t0}}}
	admitted := &Session{ID: "ses_1", State: SessionActive, Participants: []Participant{
		{ID: "par_ann", Role: RoleCustomer, State: ParticipantInCall, JoinedAt: t0, AdmittedAt: &t0}}}
	q.applyRevision("ses_1", 2, admitted)
	// A socket that read the session before the admission hands its record in late.
	if q.applyRevision("ses_1", 1, waiting) {
		t.Fatal("an older record was applied")
	}
	if snap := q.snapshot(); snap.Position("par_ann") != 0 {
		t.Fatalf("Ann is back in line at %d after her admission", snap.Position("par_ann"))
	}
}
