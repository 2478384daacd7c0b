package rooms

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/assist-video/assist/rooms/bus"
)

func openStore(t *testing.T) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := bus.Open(ctx, bus.Config{StoreDir: t.TempDir(), Name: "test", Logger: slog.Default()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	s, err := Open(ctx, b, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestWaitingRoomLifecycle(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	sess, err := s.CreateSession(ctx, "org_a")
	if err != nil {
		t.Fatal(err)
	}
	events, stop, err := s.Watch("org_a", sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	_, spec, err := s.Join(ctx, "org_a", sess.ID, JoinRequest{Role: RoleSpecialist, Name: "Sam", Key: "spc_1"})
	if err != nil || spec.State != ParticipantInCall {
		t.Fatalf("specialist join: %v %+v", err, spec)
	}
	_, c1, _ := s.Join(ctx, "org_a", sess.ID, JoinRequest{Role: RoleCustomer, Name: "Ann", Key: "link1"})
	got, c2, _ := s.Join(ctx, "org_a", sess.ID, JoinRequest{Role: RoleCustomer, Name: "Bob", Key: "link2"})
	if c1.State != ParticipantWaiting || got.Position(c1.ID) != 1 || got.Position(c2.ID) != 2 {
		t.Fatalf("queue positions wrong: %+v", got.Waiting())
	}

	t.Run("a customer who comes back with the same link keeps their place", func(t *testing.T) {
		if _, err := s.Leave(ctx, "org_a", sess.ID, c1.ID); err != nil {
			t.Fatal(err)
		}
		got, again, err := s.Join(ctx, "org_a", sess.ID, JoinRequest{Role: RoleCustomer, Key: "link1"})
		if err != nil || again.ID != c1.ID || again.Name != "Ann" {
			t.Fatalf("rejoin: %v %+v", err, again)
		}
		if got.Position(c1.ID) != 1 {
			t.Fatalf("position after coming back = %d", got.Position(c1.ID))
		}
	})

	t.Run("admitting makes the session active", func(t *testing.T) {
		got, err := s.Admit(ctx, "org_a", sess.ID, c2.ID, "spc_1")
		if err != nil || got.State != SessionActive {
			t.Fatalf("admit: %v %+v", err, got)
		}
		if _, err := s.Admit(ctx, "org_a", sess.ID, c2.ID, "spc_1"); !errors.Is(err, ErrInvalidState) {
			t.Fatalf("second admit: %v", err)
		}
	})

	t.Run("a denied customer cannot come back", func(t *testing.T) {
		if _, err := s.Deny(ctx, "org_a", sess.ID, c1.ID, "wrong queue", "spc_1"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Join(ctx, "org_a", sess.ID, JoinRequest{Role: RoleCustomer, Key: "link1"}); !errors.Is(err, ErrDenied) {
			t.Fatalf("join after deny: %v", err)
		}
	})

	t.Run("an ended session takes nobody in", func(t *testing.T) {
		got, err := s.End(ctx, "org_a", sess.ID, "done", "spc_1")
		if err != nil || got.State != SessionEnded || got.EndedAt == nil {
			t.Fatalf("end: %v %+v", err, got)
		}
		for _, p := range got.Participants {
			if p.State == ParticipantInCall || p.State == ParticipantWaiting {
				t.Errorf("participant %s still %s", p.ID, p.State)
			}
		}
		if _, _, err := s.Join(ctx, "org_a", sess.ID, JoinRequest{Role: RoleCustomer, Key: "link3"}); !errors.Is(err, ErrEnded) {
			t.Fatalf("join after end: %v", err)
		}
	})

	t.Run("every change was announced as an event", func(t *testing.T) {
		want := []EventKind{EventJoined, EventWaiting, EventWaiting, EventLeft, EventWaiting, EventAdmitted, EventDenied, EventEnded}
		for i, kind := range want {
			select {
			case ev := <-events:
				if ev.Kind != kind || ev.SessionID != sess.ID {
					t.Fatalf("event %d = %s, want %s", i, ev.Kind, kind)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("event %d (%s) never came", i, kind)
			}
		}
	})
}

func TestConcurrentAdmitsHaveExactlyOneWinner(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	sess, _ := s.CreateSession(ctx, "org_a")
	_, c, _ := s.Join(ctx, "org_a", sess.ID, JoinRequest{Role: RoleCustomer, Key: "k"})
	const admitters = 8
	var wg sync.WaitGroup
	errs := make(chan error, admitters)
	for i := range admitters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Admit(ctx, "org_a", sess.ID, c.ID, string(rune('a'+i)))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	wins := 0
	for err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, ErrInvalidState):
			t.Errorf("unexpected error: %v", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d admits succeeded, want exactly 1", wins)
	}
}

func TestOrganisationsAreIsolated(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	a, _ := s.CreateSession(ctx, "org_a")
	if _, err := s.Session(ctx, "org_b", a.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("org_b read org_a's session: %v", err)
	}
	if _, err := s.Admit(ctx, "org_b", a.ID, "par_x", "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("org_b changed org_a's session: %v", err)
	}
	list, _, _ := s.ListSessions(ctx, "org_b", 10, "")
	if len(list) != 0 {
		t.Fatalf("org_b lists %d sessions of org_a", len(list))
	}
	if _, err := s.Session(ctx, "org_a", "*"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("wildcard id: %v", err)
	}
}

func TestListSessionsPagesNewestFirst(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	var ids []string
	for range 5 {
		sess, err := s.CreateSession(ctx, "org_a")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, sess.ID)
	}
	page1, more, err := s.ListSessions(ctx, "org_a", 2, "")
	if err != nil || !more || len(page1) != 2 || page1[0].ID != ids[4] || page1[1].ID != ids[3] {
		t.Fatalf("page 1: %v %v %+v", err, more, page1)
	}
	page2, more, _ := s.ListSessions(ctx, "org_a", 2, page1[1].ID)
	page3, more3, _ := s.ListSessions(ctx, "org_a", 2, page2[1].ID)
	if !more || page2[0].ID != ids[2] || page2[1].ID != ids[1] || more3 || len(page3) != 1 || page3[0].ID != ids[0] {
		t.Fatalf("pages 2/3 wrong: %+v %+v", page2, page3)
	}
}

func TestClaimOnceAndSecrets(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	first, err := s.ClaimOnce(ctx, "bootstrap")
	second, _ := s.ClaimOnce(ctx, "bootstrap")
	if err != nil || !first || second {
		t.Fatalf("claims: %v %v %v", err, first, second)
	}
	a, _ := s.LoadOrCreateSecret(ctx, "k", func() []byte { return []byte("one") })
	b, _ := s.LoadOrCreateSecret(ctx, "k", func() []byte { return []byte("two") })
	if string(a) != "one" || string(b) != "one" {
		t.Fatalf("secret changed: %s %s", a, b)
	}
}

func TestReadingTheTimelineLeavesNoConsumers(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	sess, _ := s.CreateSession(ctx, "org_a")
	if err := s.AppendTimeline(ctx, "org_a", sess.ID, "chat", []byte(`{"type":"chat"}`)); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		entries, err := s.Timeline(ctx, "org_a", sess.ID)
		if err != nil || len(entries) != 1 {
			t.Fatalf("timeline: %v %d", err, len(entries))
		}
	}
	stream, err := s.bus.JS.Stream(ctx, streamTimeline)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Consumers != 0 {
		t.Fatalf("%d consumers left on %s after reading", info.State.Consumers, streamTimeline)
	}
}
