package signaling

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/assist-video/assist/signaling/wire"
)

// Relayed sockets: a participant whose socket reaches a node other than their session's media
// node is carried to it. The node that accepted the socket reads join, dials the media node's
// /v1/signal with a signed relay header, replays the join and pipes frames both ways through
// the participant's own reader and writer; the media node runs the participant (its SFU hands
// out the ICE candidates, so media goes straight there). Close codes pass through both ways.

const (
	// relayHeader carries the accepting node, the client's address, a time and their HMAC
	// under the cluster's relay secret: the media node trusts the address for its per-IP
	// limits and audit trail, and never relays such a socket again.
	relayHeader      = "Assist-Relay"
	relayMaxSkew     = time.Minute
	relayDialTimeout = 5 * time.Second
	// relayReadLimit bounds one frame from the media node (welcome, history, descriptions).
	relayReadLimit = 1 << 20
	// relayBuffer is how many client frames may wait for the media node.
	relayBuffer = outboxSize
)

// relay is one socket carried to the session's media node.
type relay struct {
	conn   *websocket.Conn
	node   string
	toRoom chan []byte   // client frames for the media node
	stop   chan struct{} // closed to end the relay
	done   chan struct{} // closed when the media node's side ended
	// How the media node closed, for the client (set before done is closed).
	closeCode  int
	closeText  string
	writerDone chan struct{}
	readerDone chan struct{}
	stopOnce   sync.Once
}

type relayedKey struct{}

// acceptRelay trusts a relayed socket's client address when the relay header is signed by a
// node of this cluster; a header that does not verify is dropped and the socket is an
// ordinary client's.
func (s *Server) acceptRelay(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v := r.Header.Get(relayHeader)
		if v == "" || s.cluster == nil {
			h(w, r)
			return
		}
		r.Header.Del(relayHeader)
		node, addr, ok := s.cluster.verify(v, time.Now())
		if !ok {
			s.log.Warn("relay header did not verify", "remote", r.RemoteAddr)
			h(w, r)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), relayedKey{}, node))
		r.RemoteAddr = addr
		h(w, r)
	}
}

// relayedFrom is the node that relayed the request, or "".
func relayedFrom(r *http.Request) string {
	node, _ := r.Context().Value(relayedKey{}).(string)
	return node
}

func (c *cluster) mac(node, addr, ts string) string {
	m := hmac.New(sha256.New, c.secret)
	m.Write([]byte(node + "\n" + addr + "\n" + ts))
	return hex.EncodeToString(m.Sum(nil))
}

// sign makes the relay header for a client's address.
func (c *cluster) sign(addr string, now time.Time) string {
	ts := strconv.FormatInt(now.Unix(), 10)
	return url.Values{"node": {c.self.ID}, "addr": {addr}, "ts": {ts}, "sig": {c.mac(c.self.ID, addr, ts)}}.Encode()
}

// verify checks a relay header; it returns the relaying node and the client's address.
func (c *cluster) verify(header string, now time.Time) (node, addr string, ok bool) {
	v, err := url.ParseQuery(header)
	if err != nil {
		return "", "", false
	}
	node, addr, ts := v.Get("node"), v.Get("addr"), v.Get("ts")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || node == "" || addr == "" {
		return "", "", false
	}
	if d := now.Sub(time.Unix(sec, 0)); d > relayMaxSkew || d < -relayMaxSkew {
		return "", "", false
	}
	if !hmac.Equal([]byte(v.Get("sig")), []byte(c.mac(node, addr, ts))) {
		return "", "", false
	}
	return node, addr, true
}

// route runs before a join is handled here: it places the session and, when its media node is
// another, carries this socket there. It reports a wire error for the client, or nil with
// p.upstream set (relayed) or unset (the session is this node's).
func (p *participant) route(ctx context.Context, m *wire.Join) *wire.Error {
	s := p.srv
	if s.cluster == nil {
		return nil
	}
	for attempt := 0; ; attempt++ {
		node, err := s.placeSession(ctx, p.orgID, p.sessionID)
		if err != nil {
			return nil // no session, or the store is down: the join itself says so
		}
		if node == s.cluster.self.ID {
			return nil
		}
		if p.relayedBy != "" {
			// Another node thought the session was here; it is not (any more). The client
			// starts again and reaches the right node.
			p.closeCode, p.closeText = websocket.CloseTryAgainLater, "the session moved: reconnect"
			return wire.Errorf(wire.CodeInternal, "the session moved to another node: reconnect")
		}
		err = p.relayTo(ctx, node, m)
		if err == nil {
			return nil
		}
		p.log.Warn("relay to the session's node", "node", node, "err", err)
		if attempt > 0 || s.refreshLive(ctx) != nil || s.cluster.liveNode(node) {
			p.closeCode, p.closeText = websocket.CloseTryAgainLater, "the session's node is unreachable: reconnect"
			return wire.Errorf(wire.CodeInternal, "%v: reconnect", errRoomNodeUnreachable)
		}
		// The node is gone from the registry: place the session again, once.
	}
}

// relayTo dials the media node, replays the join and starts piping.
func (p *participant) relayTo(ctx context.Context, nodeID string, m *wire.Join) error {
	s := p.srv
	node, ok := s.cluster.node(nodeID)
	if !ok {
		return errRoomNodeUnreachable
	}
	header := http.Header{}
	header.Set(relayHeader, s.cluster.sign(p.remoteAddr, time.Now()))
	dialer := websocket.Dialer{HandshakeTimeout: relayDialTimeout, ReadBufferSize: 4096, WriteBufferSize: 4096}
	target := "ws" + strings.TrimPrefix(node.URL, "http") + "/v1/signal"
	conn, resp, err := dialer.DialContext(ctx, target, header)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return err
	}
	join, err := wire.Encode(wire.TypeJoin, m)
	if err != nil {
		conn.Close()
		return err
	}
	_ = conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if err := conn.WriteMessage(websocket.TextMessage, join); err != nil {
		conn.Close()
		return err
	}
	r := &relay{conn: conn, node: nodeID, toRoom: make(chan []byte, relayBuffer), stop: make(chan struct{}),
		done: make(chan struct{}), writerDone: make(chan struct{}), readerDone: make(chan struct{})}
	p.upstream = r
	p.log = p.log.With("session", p.sessionID, "relayed_to", nodeID)
	p.log.Info("relaying to the session's node")
	go r.writeLoop()
	go r.readLoop(p)
	return nil
}

// readLoop passes the media node's frames to the client's writer until the media node's side
// ends; its pings keep the connection alive. It queues frames itself rather than through
// sendEncoded, whose overflow signal belongs to the loop's goroutine.
func (r *relay) readLoop(p *participant) {
	defer close(r.readerDone)
	defer close(r.done)
	r.conn.SetReadLimit(relayReadLimit)
	_ = r.conn.SetReadDeadline(time.Now().Add(pongTimeout))
	r.conn.SetPingHandler(func(data string) error {
		_ = r.conn.SetReadDeadline(time.Now().Add(pongTimeout))
		err := r.conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(writeTimeout))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		return err
	})
	for {
		kind, frame, err := r.conn.ReadMessage()
		if err != nil {
			r.closeCode, r.closeText = websocket.CloseTryAgainLater, "lost the session's node: reconnect"
			var ce *websocket.CloseError
			if errors.As(err, &ce) && ce.Code != websocket.CloseNoStatusReceived && ce.Code != websocket.CloseAbnormalClosure {
				r.closeCode, r.closeText = ce.Code, ce.Text
			}
			return
		}
		_ = r.conn.SetReadDeadline(time.Now().Add(pongTimeout))
		if kind != websocket.TextMessage {
			continue
		}
		select {
		case p.frames <- frame:
		default: // the client does not read: end the relay, and the loop closes the socket
			r.closeCode, r.closeText = websocket.ClosePolicyViolation, "too slow to read"
			return
		}
	}
}

// writeLoop sends the client's frames to the media node; stopping says goodbye.
func (r *relay) writeLoop() {
	defer close(r.writerDone)
	for {
		select {
		case frame := <-r.toRoom:
			_ = r.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
			if err := r.conn.WriteMessage(websocket.TextMessage, frame); err != nil {
				_ = r.conn.Close() // the reader ends too
				return
			}
		case <-r.stop:
			_ = r.conn.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(writeTimeout))
			return
		}
	}
}

// forwardToRoom queues a client frame for the media node; it reports whether the socket
// should close (the media node does not keep up).
func (p *participant) forwardToRoom(frame []byte) (stop bool) {
	select {
	case p.upstream.toRoom <- frame:
		return false
	default:
		p.closeCode, p.closeText = websocket.ClosePolicyViolation, "the session's node fell behind"
		return true
	}
}

// relayDone is closed when the relayed socket's media node side ended (nil when not relayed).
func (p *participant) relayDone() <-chan struct{} {
	if p.upstream == nil {
		return nil
	}
	return p.upstream.done
}

// relayEnded passes the media node's close code on to the client.
func (p *participant) relayEnded() {
	p.closeCode, p.closeText = p.upstream.closeCode, p.upstream.closeText
}

// closeRelay ends the relay: goodbye to the media node, then both goroutines exit. It runs
// before the client's writer says goodbye, so the media node's last frames reach the client.
func (p *participant) closeRelay() {
	r := p.upstream
	if r == nil {
		return
	}
	r.stopOnce.Do(func() { close(r.stop) })
	select {
	case <-r.writerDone:
	case <-time.After(writeTimeout):
	}
	_ = r.conn.Close()
	<-r.readerDone
}
