package rooms

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/assist-video/assist/rooms/bus"
)

func TestNodeRegistry(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := bus.Open(ctx, bus.Config{StoreDir: t.TempDir(), Name: "test", Logger: slog.Default()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	const ttl = time.Second
	nodes, err := OpenNodes(ctx, b, ttl)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("a beating node is live with its load and URL", func(t *testing.T) {
		if err := nodes.Beat(ctx, Node{ID: "a", URL: "http://a:8080", Boot: "b1", Peers: 2, Participants: 3}); err != nil {
			t.Fatal(err)
		}
		live, err := nodes.Live(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n, ok := live["a"]; !ok || n.URL != "http://a:8080" || n.Load() != 4*2+3 {
			t.Fatalf("live = %+v", live)
		}
	})

	t.Run("a node that stops beating disappears after the TTL", func(t *testing.T) {
		if err := nodes.Beat(ctx, Node{ID: "b.host", URL: "http://b:8080", Boot: "b1"}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * ttl)
		for {
			live, err := nodes.Live(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := live["b.host"]; !ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the silent node is still live")
			}
			_ = nodes.Beat(ctx, Node{ID: "a", URL: "http://a:8080", Boot: "b1"}) // a stays
			time.Sleep(ttl / 5)
		}
		live, _ := nodes.Live(ctx)
		if _, ok := live["a"]; !ok {
			t.Fatal("the beating node expired too")
		}
	})

	t.Run("a node that leaves is gone at once", func(t *testing.T) {
		if err := nodes.Leave(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if live, _ := nodes.Live(ctx); len(live) != 0 {
			t.Fatalf("live = %+v", live)
		}
	})

	t.Run("exactly one survivor takes over a dead boot", func(t *testing.T) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		won := 0
		for range 5 {
			wg.Go(func() {
				ok, err := nodes.ClaimTakeover(ctx, Node{ID: "dead", Boot: "x1"})
				if err != nil {
					t.Error(err)
				}
				if ok {
					mu.Lock()
					won++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if won != 1 {
			t.Fatalf("%d survivors took over", won)
		}
		if ok, _ := nodes.ClaimTakeover(ctx, Node{ID: "dead", Boot: "x2"}); !ok {
			t.Fatal("the next boot of the node could not be taken over")
		}
	})
}

func TestPlacement(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	sess, err := s.CreateSession(ctx, "org_a")
	if err != nil {
		t.Fatal(err)
	}
	live := map[string]bool{"n1": true, "n2": true}
	isLive := func(n string) bool { return live[n] }

	t.Run("nodes placing one session at once agree on one node", func(t *testing.T) {
		var wg sync.WaitGroup
		got := make([]string, 6)
		for i := range got {
			wg.Go(func() {
				pick := []string{"n1", "n2"}[i%2]
				placed, err := s.Place(ctx, "org_a", sess.ID, isLive, func() string { return pick })
				if err != nil {
					t.Error(err)
					return
				}
				got[i] = placed.MediaNode
			})
		}
		wg.Wait()
		for _, n := range got {
			if n == "" || n != got[0] {
				t.Fatalf("placements disagree: %v", got)
			}
		}
	})

	t.Run("a session on a dead node is placed again", func(t *testing.T) {
		cur, _ := s.Session(ctx, "org_a", sess.ID)
		dead := cur.MediaNode
		delete(live, dead)
		other := map[string]string{"n1": "n2", "n2": "n1"}[dead]
		placed, err := s.Place(ctx, "org_a", sess.ID, isLive, func() string { return other })
		if err != nil || placed.MediaNode != other {
			t.Fatalf("re-placed on %q (%v), want %q", placed.MediaNode, err, other)
		}
		if n, err := s.ReleaseNode(ctx, other); err != nil || n != 1 {
			t.Fatalf("released %d: %v", n, err)
		}
		if cur, _ := s.Session(ctx, "org_a", sess.ID); cur.MediaNode != "" {
			t.Fatalf("media node after release = %q", cur.MediaNode)
		}
	})
}
