package rooms

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/assist-video/assist/rooms/bus"
)

// The node registry: every node puts its record into a KV bucket every NodeHeartbeat; the
// bucket forgets records older than its TTL, so a node that stops beating disappears from it.
const (
	bucketNodes = "assist_nodes"
	// NodeHeartbeat is how often a node renews its record.
	NodeHeartbeat = 2 * time.Second
	// DefaultNodeTTL is how long a record lives without renewal: a few missed beats (a NATS
	// leader election takes a few seconds) do not make a node dead.
	DefaultNodeTTL = 5 * NodeHeartbeat
	nodeKeyPrefix  = "node."
	takeoverPrefix = "takeover."
)

// Node is one Assist node as the others see it.
type Node struct {
	ID string `json:"id"`
	// URL is where other nodes reach this one (internal-url).
	URL string `json:"url"`
	// Boot names this run of the node: a restart is a new boot, taken over anew if it dies.
	Boot      string    `json:"boot"`
	StartedAt time.Time `json:"started_at"`
	SeenAt    time.Time `json:"seen_at"`
	// Load: joined sockets this node runs (its sessions' participants), the sessions they
	// belong to, and the SFU's media peers and rooms.
	Participants int `json:"participants"`
	Sessions     int `json:"sessions"`
	Peers        int `json:"peers"`
	Rooms        int `json:"rooms"`
	// Draining: the node is shutting down and takes no new sessions.
	Draining bool `json:"draining,omitempty"`
}

// Load is what placement minimises: media peers cost most (they forward RTP), participants
// and sessions a little.
func (n Node) Load() int { return 4*n.Peers + n.Participants + n.Sessions }

// Nodes is the registry of live nodes.
type Nodes struct {
	kv  jetstream.KeyValue
	ttl time.Duration
	now func() time.Time
}

// OpenNodes creates or updates the registry bucket; records older than ttl expire
// (DefaultNodeTTL when ttl is 0).
func OpenNodes(ctx context.Context, b *bus.Bus, ttl time.Duration) (*Nodes, error) {
	if ttl <= 0 {
		ttl = DefaultNodeTTL
	}
	kv, err := b.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:   bucketNodes,
		History:  1,
		TTL:      ttl,
		Storage:  jetstream.FileStorage,
		Replicas: b.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("rooms: bucket %s: %w", bucketNodes, err)
	}
	return &Nodes{kv: kv, ttl: ttl, now: time.Now}, nil
}

// TTL is how long a node stays in the registry without a heartbeat.
func (n *Nodes) TTL() time.Duration { return n.ttl }

// nodeKey is a KV key for a node id; ids outside the KV key alphabet are hex-encoded.
func nodeKey(id string) string {
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return nodeKeyPrefix + "x" + hex.EncodeToString([]byte(id))
		}
	}
	return nodeKeyPrefix + id
}

// Beat puts the node's record, renewing its life in the registry.
func (n *Nodes) Beat(ctx context.Context, node Node) error {
	node.SeenAt = n.now().UTC()
	data, err := json.Marshal(node)
	if err != nil {
		return err
	}
	_, err = n.kv.Put(ctx, nodeKey(node.ID), data)
	return err
}

// Leave removes the node's record at once: a node that shuts down says goodbye.
func (n *Nodes) Leave(ctx context.Context, id string) error {
	err := n.kv.Delete(ctx, nodeKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	return err
}

// Live lists the nodes whose records are fresh, by id.
func (n *Nodes) Live(ctx context.Context) (map[string]Node, error) {
	lister, err := n.kv.ListKeysFiltered(ctx, nodeKeyPrefix+">")
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return map[string]Node{}, nil
	}
	if err != nil {
		return nil, err
	}
	var keys []string
	for key := range lister.Keys() {
		keys = append(keys, key)
	}
	_ = lister.Stop()
	out := make(map[string]Node, len(keys))
	cutoff := n.now().Add(-n.ttl)
	for _, key := range keys {
		node, _, err := getJSON[Node](ctx, n.kv, key)
		if errors.Is(err, ErrNotFound) {
			continue // expired or left since the listing
		}
		if err != nil {
			return nil, err
		}
		if node.SeenAt.Before(cutoff) {
			continue // the bucket has not got round to expiring it yet
		}
		out[node.ID] = *node
	}
	return out, nil
}

// ClaimTakeover reports whether this caller is the one survivor to take over the sessions of
// the given boot of a node that died: exactly one caller across the cluster gets true.
func (n *Nodes) ClaimTakeover(ctx context.Context, node Node) (bool, error) {
	key := takeoverPrefix + strings.TrimPrefix(nodeKey(node.ID), nodeKeyPrefix) + "." + node.Boot
	_, err := n.kv.Create(ctx, key, []byte(n.now().UTC().Format(time.RFC3339Nano)))
	if errors.Is(err, jetstream.ErrKeyExists) {
		return false, nil
	}
	return err == nil, err
}

// Place returns the session's media node: the current one while it is live, else choose's
// answer, recorded with compare-and-set so that every node agrees. An ended session keeps
// whatever it has.
func (s *Store) Place(ctx context.Context, orgID, sessionID string, live func(node string) bool, choose func() string) (*Session, error) {
	var placed bool
	sess, err := s.update(ctx, orgID, sessionID, func(sess *Session) error {
		placed = false
		if sess.State == SessionEnded || sess.MediaNode != "" && live(sess.MediaNode) {
			return errUnchanged
		}
		sess.MediaNode, placed = choose(), true
		return nil
	})
	if errors.Is(err, errUnchanged) {
		return s.Session(ctx, orgID, sessionID)
	}
	if err == nil && placed {
		s.log.Info("session placed", "session", sessionID, "node", sess.MediaNode)
	}
	return sess, err
}

// errUnchanged ends a compare-and-set that has nothing to write.
var errUnchanged = errors.New("unchanged")

// ReleaseNode clears the media node of every session placed on node (which died): the next
// join places it again. It returns how many sessions it released.
func (s *Store) ReleaseNode(ctx context.Context, node string) (int, error) {
	lister, err := s.sessions.ListKeys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var keys []string
	for key := range lister.Keys() {
		keys = append(keys, key)
	}
	_ = lister.Stop()
	released := 0
	for _, key := range keys {
		orgID, sessionID, ok := strings.Cut(key, ".")
		if !ok {
			continue
		}
		_, err := s.update(ctx, orgID, sessionID, func(sess *Session) error {
			if sess.MediaNode != node {
				return errUnchanged
			}
			sess.MediaNode = ""
			return nil
		})
		switch {
		case err == nil:
			released++
		case errors.Is(err, errUnchanged), errors.Is(err, ErrNotFound):
		default:
			return released, fmt.Errorf("rooms: release session %s: %w", key, err)
		}
	}
	return released, nil
}

// readYourWrites makes a replicated bucket answer reads from its stream leader: with direct
// gets (the KV default) any replica answers, and a follower that has not applied the latest
// write yet answers with the old value. A node that reads a session right after another node's
// event (a customer's socket refreshing after the admission, on another node than the
// specialist's) must see that write, or it waits for an event that has already come.
func readYourWrites(ctx context.Context, b *bus.Bus, kv jetstream.KeyValue) (jetstream.KeyValue, error) {
	if b.Replicas <= 1 {
		return kv, nil
	}
	stream, err := b.JS.Stream(ctx, "KV_"+kv.Bucket())
	if err != nil {
		return nil, err
	}
	cfg := stream.CachedInfo().Config
	if cfg.AllowDirect {
		cfg.AllowDirect = false
		if _, err := b.JS.UpdateStream(ctx, cfg); err != nil {
			return nil, err
		}
	}
	return b.JS.KeyValue(ctx, kv.Bucket())
}
