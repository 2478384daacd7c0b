package signaling

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/assist-video/assist/rooms"
)

// Scale-out: every node beats into the node registry (rooms.Nodes) with its load and the URL
// the others reach it at; a session is placed on one media node the first time someone joins
// it (the least-loaded live node), and sockets that reach other nodes are relayed there
// (relay.go). When a node's record disappears, one survivor takes its sessions over: their
// participants become reconnecting and the sessions are placed again on the next join.

// cluster is this node's part in the node registry.
type cluster struct {
	nodes  *rooms.Nodes
	self   rooms.Node // ID, URL, Boot, StartedAt
	secret []byte     // signs relayed sockets (relay.go)
	probe  *http.Client

	mu     sync.Mutex
	live   map[string]rooms.Node // the last poll, with placements made since
	polled bool                  // live has been read at least once
	seen   map[string]rooms.Node // what the previous poll saw, to notice deaths

	internalSeen replayGuard // signed internal calls already served (forward.go)
}

const (
	// takeoverProbeTimeout bounds asking a node that vanished from the registry whether it is
	// still serving (it may only have lost NATS for a while).
	takeoverProbeTimeout = 2 * time.Second
	takeoverTimeout      = time.Minute
)

// openCluster joins the node registry; call it once the listener is bound.
func (s *Server) openCluster(ctx context.Context) error {
	nodes, err := rooms.OpenNodes(ctx, s.bus, 0)
	if err != nil {
		return err
	}
	secret, err := s.rooms.LoadOrCreateSecret(ctx, "relay", func() []byte {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		return b
	})
	if err != nil {
		return err
	}
	boot := make([]byte, 8)
	_, _ = rand.Read(boot)
	s.cluster = &cluster{
		nodes:  nodes,
		self:   rooms.Node{ID: s.cfg.NodeID, URL: s.cfg.NodeURL(s.listener.Addr().String()), Boot: hex.EncodeToString(boot), StartedAt: time.Now().UTC()},
		secret: secret,
		probe:  &http.Client{Timeout: takeoverProbeTimeout},
		live:   map[string]rooms.Node{},
		seen:   map[string]rooms.Node{},
	}
	return nil
}

// runCluster beats once, so that this node can be placed on as soon as it serves, then keeps
// beating and watching the others until ctx ends.
func (s *Server) runCluster(ctx context.Context) {
	s.heartbeat(ctx)
	s.workers.Add(1)
	go func() {
		defer s.workers.Done()
		tick := time.NewTicker(rooms.NodeHeartbeat)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				s.heartbeat(ctx)
			}
		}
	}()
}

// heartbeat renews this node's record, reads the others' and takes over any that died.
func (s *Server) heartbeat(ctx context.Context) {
	c := s.cluster
	bctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if !s.draining.Load() {
		if err := c.nodes.Beat(bctx, s.nodeLoad()); err != nil {
			s.log.Warn("node heartbeat", "err", err)
		}
	}
	live, err := c.nodes.Live(bctx)
	if err != nil {
		s.log.Warn("reading the node registry", "err", err)
		return // no news is not a death
	}
	c.mu.Lock()
	var gone []rooms.Node
	for id, n := range c.seen {
		if now, ok := live[id]; id != c.self.ID && (!ok || now.Boot != n.Boot) {
			gone = append(gone, n)
		}
	}
	c.live, c.seen, c.polled = live, live, true
	c.mu.Unlock()
	for _, n := range gone {
		if now, ok := live[n.ID]; ok && now.Boot != n.Boot {
			continue // restarted: its new run interrupts what the old one held (interruptPreviousRun)
		}
		s.workers.Add(1)
		go func() {
			defer s.workers.Done()
			s.takeOver(ctx, n)
		}()
	}
}

// nodeLoad is this node's record as it beats it.
func (s *Server) nodeLoad() rooms.Node {
	n := s.cluster.self
	n.Sessions, n.Participants = s.limits.sessionSockets.totals()
	n.Peers, n.Rooms = s.sfu.Peers(), s.sfu.Rooms()
	n.Draining = s.draining.Load()
	return n
}

// totals is how many keys hold something open, and how many things are open in all.
func (g *gauge) totals() (keys, open int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, n := range g.open {
		open += n
	}
	return len(g.open), open
}

// leaveCluster removes this node from the registry as it starts draining: no session is
// placed here any more, and the survivors take its sessions over at their next beat.
func (s *Server) leaveCluster() {
	if s.cluster == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := s.cluster.nodes.Leave(ctx, s.cluster.self.ID); err != nil {
		s.log.Warn("leaving the node registry", "err", err)
	}
}

// takeOver handles a node that vanished from the registry: unless it still answers as ready
// (it lost NATS for a while and will beat again), one survivor makes its participants
// reconnecting, marks its sessions interrupted and clears their placement.
func (s *Server) takeOver(ctx context.Context, n rooms.Node) {
	log := s.log.With("dead_node", n.ID, "boot", n.Boot)
	if s.nodeReady(ctx, n) {
		log.Info("a node left the registry but still serves; not taking over")
		return
	}
	tctx, cancel := context.WithTimeout(ctx, takeoverTimeout)
	defer cancel()
	won, err := s.cluster.nodes.ClaimTakeover(tctx, n)
	if err != nil || !won {
		if err != nil {
			log.Warn("claiming a dead node's sessions", "err", err)
		}
		return
	}
	dropped, err := s.rooms.InterruptNode(tctx, n.ID)
	if err != nil {
		log.Error("interrupting a dead node's sessions", "err", err)
	}
	released, err := s.rooms.ReleaseNode(tctx, n.ID)
	if err != nil {
		log.Error("releasing a dead node's sessions", "err", err)
	}
	log.Info("took over a dead node", "reconnecting", len(dropped), "sessions", released)
	for _, r := range dropped {
		plog := s.log.With("session", r.SessionID, "participant", r.ParticipantID)
		s.workers.Add(1)
		go func() {
			defer s.workers.Done()
			s.expireAt(ctx, r, plog)
		}()
	}
}

// nodeReady asks a node directly whether it serves and is not draining.
func (s *Server) nodeReady(ctx context.Context, n rooms.Node) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.URL+"/readyz", nil)
	if err != nil {
		return false
	}
	resp, err := s.cluster.probe.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// liveNode reports whether a node is in the registry and takes sessions. Until this node has
// read the registry once, every other node counts as live: it must not take sessions away.
func (c *cluster) liveNode(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.live[id]
	return ok && !n.Draining || !c.polled && id != c.self.ID
}

// node is a live node's record.
func (c *cluster) node(id string) (rooms.Node, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.live[id]
	return n, ok
}

// leastLoaded picks the live node with the least load; ties go to this node (no relay), then
// by id. The pick counts as one more session there until the next poll, so that a burst of
// new sessions spreads.
func (c *cluster) leastLoaded(selfDraining bool) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var candidates []rooms.Node
	for _, n := range c.live {
		if !n.Draining && !(n.ID == c.self.ID && selfDraining) {
			candidates = append(candidates, n)
		}
	}
	if len(candidates) == 0 {
		return c.self.ID
	}
	sort.Slice(candidates, func(i, j int) bool {
		a, b := candidates[i], candidates[j]
		if a.Load() != b.Load() {
			return a.Load() < b.Load()
		}
		if (a.ID == c.self.ID) != (b.ID == c.self.ID) {
			return a.ID == c.self.ID
		}
		return a.ID < b.ID
	})
	pick := candidates[0]
	pick.Sessions++
	c.live[pick.ID] = pick
	return pick.ID
}

// refreshLive re-reads the registry now (a relay could not reach a node).
func (s *Server) refreshLive(ctx context.Context) error {
	live, err := s.cluster.nodes.Live(ctx)
	if err != nil {
		return err
	}
	s.cluster.mu.Lock()
	s.cluster.live, s.cluster.polled = live, true
	s.cluster.mu.Unlock()
	return nil
}

// placeSession returns the session's media node, placing it if it has none or its node is
// gone.
func (s *Server) placeSession(ctx context.Context, orgID, sessionID string) (string, error) {
	c := s.cluster
	sess, err := s.rooms.Place(ctx, orgID, sessionID, c.liveNode, func() string { return c.leastLoaded(s.draining.Load()) })
	if err != nil {
		return "", err
	}
	if sess.MediaNode == "" {
		return c.self.ID, nil // ended before ever being placed
	}
	return sess.MediaNode, nil
}

// errRoomNodeUnreachable: the node carrying the session did not take the relayed socket.
var errRoomNodeUnreachable = errors.New("the node carrying the session is unreachable")
