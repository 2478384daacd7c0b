package turnserver

import (
	"net"
	"sync"
	"time"
)

// tracker knows every socket the server owns beyond its listeners: the client connections
// accepted on the TCP and TLS listeners and the relay sockets of allocations. pion/turn's
// Close only closes listeners, so without this a connected TCP client would keep its
// goroutine and its relay alive after Close; and it lets RevokeSession find a session's
// relays.
type tracker struct {
	mu      sync.Mutex
	closed  bool
	clients map[*clientConn]struct{}
	relays  map[string]map[*relayConn]struct{} // by session id
}

func newTracker() *tracker {
	return &tracker{
		clients: make(map[*clientConn]struct{}),
		relays:  make(map[string]map[*relayConn]struct{}),
	}
}

// closeAll closes every tracked socket, and every socket added from now on. Pion's goroutines
// reading them then fail, and delete their allocations.
func (t *tracker) closeAll() {
	t.mu.Lock()
	t.closed = true
	var all []net.Conn
	for c := range t.clients {
		all = append(all, c)
	}
	var relays []*relayConn
	for _, set := range t.relays {
		for r := range set {
			relays = append(relays, r)
		}
	}
	t.mu.Unlock()
	for _, c := range all {
		_ = c.Close()
	}
	for _, r := range relays {
		_ = r.Close()
	}
}

// closeSession closes the session's relay sockets and reports how many there were.
func (t *tracker) closeSession(sessionID string) int {
	t.mu.Lock()
	var relays []*relayConn
	for r := range t.relays[sessionID] {
		relays = append(relays, r)
	}
	t.mu.Unlock()
	for _, r := range relays {
		_ = r.Close()
	}
	return len(relays)
}

func (t *tracker) relayCount(sessionID string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.relays[sessionID])
}

func (t *tracker) addRelay(sessionID string, conn net.PacketConn) *relayConn {
	r := &relayConn{PacketConn: conn, t: t, session: sessionID}
	t.mu.Lock()
	closed := t.closed
	if !closed {
		set := t.relays[sessionID]
		if set == nil {
			set = make(map[*relayConn]struct{})
			t.relays[sessionID] = set
		}
		set[r] = struct{}{}
	}
	t.mu.Unlock()
	if closed {
		_ = conn.Close() // pion's read fails at once and drops the allocation
	}
	return r
}

// relayConn is a relay socket. Close is idempotent and returns nil when repeated: pion closes
// an allocation's relay again after we closed it, and an error there would make pion's
// allocation manager stop closing the others.
type relayConn struct {
	net.PacketConn
	t       *tracker
	session string
	once    sync.Once
	err     error
}

func (r *relayConn) Close() error {
	r.once.Do(func() {
		r.t.mu.Lock()
		if set := r.t.relays[r.session]; set != nil {
			delete(set, r)
			if len(set) == 0 {
				delete(r.t.relays, r.session)
			}
		}
		r.t.mu.Unlock()
		r.err = r.PacketConn.Close()
	})
	return r.err
}

// The deadlines on client connections. A client must say something within firstReadTimeout of
// connecting (a TLS client must finish its handshake, which pion bounds too), and a connected
// client refreshes its allocation at least once per allocation lifetime (10 minutes), so a
// connection silent for longer than clientIdleTimeout is dead or hostile. Without them a
// client could hold a goroutine and a file descriptor forever by connecting and saying nothing.
const (
	firstReadTimeout  = 10 * time.Second
	clientIdleTimeout = 11 * time.Minute
)

// trackingListener registers every accepted connection with the tracker. For the TLS
// listener it sits under tls.NewListener, so pion still sees a *tls.Conn.
type trackingListener struct {
	net.Listener
	t *tracker
}

func (l trackingListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	c := &clientConn{Conn: conn, t: l.t}
	_ = conn.SetReadDeadline(time.Now().Add(firstReadTimeout))
	l.t.mu.Lock()
	closed := l.t.closed
	if !closed {
		l.t.clients[c] = struct{}{}
	}
	l.t.mu.Unlock()
	if closed {
		_ = conn.Close()
	}
	return c, nil
}

type clientConn struct {
	net.Conn
	t    *tracker
	once sync.Once
	err  error
}

func (c *clientConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err == nil {
		// Moving the deadline costs a timer reset, no allocation.
		_ = c.Conn.SetReadDeadline(time.Now().Add(clientIdleTimeout))
	}
	return n, err
}

func (c *clientConn) Close() error {
	c.once.Do(func() {
		c.t.mu.Lock()
		delete(c.t.clients, c)
		c.t.mu.Unlock()
		c.err = c.Conn.Close()
	})
	return c.err
}
