// Package udpbatch sends the SFU's UDP datagrams in batches: one sendmmsg(2) system call for
// the copies of a packet that the forwarding loop writes to all of a track's subscribers,
// instead of one sendto(2) per subscriber.
//
// A Group is shared by the SFU's sockets (one per local address, all behind Pion's UDP mux).
// The forwarding loop brackets its fan-out with Begin and End. While any fan-out is open,
// datagrams written to the group's sockets are copied into a batch; End sends everything
// pending with one system call per socket, on the caller's goroutine, before it returns.
// Outside a fan-out, writes go straight to the socket. So no datagram waits longer than the
// fan-out it overlapped with, nothing runs on a goroutine of its own, and datagrams written
// by one goroutine leave in the order written.
package udpbatch

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"

	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
)

// Size is the most datagrams one system call sends; a fuller batch is sent at once.
const Size = 64

// maxDatagram is the largest datagram a batch holds; larger ones are sent on their own.
const maxDatagram = 1500

// Group batches the writes of its sockets between Begin and End.
type Group struct {
	mu      sync.Mutex
	depth   int      // open fan-outs
	ready   []*batch // full batches, detached from their sockets, oldest first
	pending []*Conn  // sockets with a partly filled batch
	free    []*batch

	// flushMu makes flushes one at a time, so that datagrams leave in the order they were
	// queued, and End returns only once the datagrams queued before it have left.
	flushMu sync.Mutex
	sending []*batch // owned by the flusher
}

// NewGroup returns an empty group.
func NewGroup() *Group { return &Group{} }

// Begin opens a fan-out: until the matching End, writes to the group's sockets are queued.
// A nil Group does nothing.
func (g *Group) Begin() {
	if g == nil {
		return
	}
	g.mu.Lock()
	g.depth++
	g.mu.Unlock()
}

// End closes a fan-out and sends every queued datagram of the group before it returns.
func (g *Group) End() {
	if g == nil {
		return
	}
	g.mu.Lock()
	g.depth--
	g.mu.Unlock()
	g.flush()
}

// flush sends every queued datagram, oldest first.
func (g *Group) flush() {
	g.flushMu.Lock()
	defer g.flushMu.Unlock()
	g.mu.Lock()
	out := append(g.sending[:0], g.ready...)
	clear(g.ready)
	g.ready = g.ready[:0]
	for _, c := range g.pending {
		out = append(out, c.queued)
		c.queued = nil
	}
	clear(g.pending)
	g.pending = g.pending[:0]
	g.mu.Unlock()
	if len(out) == 0 {
		return
	}

	for _, b := range out {
		b.conn.sendBatch(b)
	}
	g.mu.Lock()
	for _, b := range out {
		b.reset()
		g.free = append(g.free, b)
	}
	g.mu.Unlock()
	clear(out)
	g.sending = out[:0]
}

func (g *Group) newBatchLocked(c *Conn) *batch {
	var b *batch
	if n := len(g.free); n > 0 {
		b = g.free[n-1]
		g.free[n-1] = nil
		g.free = g.free[:n-1]
	} else {
		b = newBatch()
	}
	b.conn = c
	return b
}

// Conn is one of the SFU's UDP sockets, with its writes batched by its group. It implements
// Pion's transport.UDPConn and ice.AddrPortReaderWriter.
type Conn struct {
	*net.UDPConn
	group *Group
	ipv4  bool  // bound to an IPv4 address: batches carry IPv4 socket addresses
	raw   rawIO // single datagrams to and from IPv4 addresses, when ipv4

	queued *batch // under group.mu
}

// NewConn wraps a socket. Only sockets bound to an IPv4 address batch; others (IPv6) write
// each datagram on its own.
func NewConn(conn *net.UDPConn, g *Group) *Conn {
	c := &Conn{UDPConn: conn, group: g}
	if a, ok := conn.LocalAddr().(*net.UDPAddr); ok && a.IP.To4() != nil {
		c.ipv4 = batchSupported
	}
	c.raw.init()
	return c
}

// WriteToAddrPort sends one datagram, or queues it while a fan-out is open.
func (c *Conn) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	if !c.ipv4 || !addr.Addr().Is4() || len(b) > maxDatagram {
		return c.UDPConn.WriteToUDPAddrPort(b, addr)
	}
	g := c.group
	g.mu.Lock()
	if g.depth == 0 {
		g.mu.Unlock()
		return c.raw.write(c.UDPConn, b, addr)
	}
	if c.queued == nil {
		c.queued = g.newBatchLocked(c)
		g.pending = append(g.pending, c)
	}
	q := c.queued
	q.add(b, addr)
	if !q.full() {
		g.mu.Unlock()
		return len(b), nil
	}
	// A full batch leaves now, with everything queued before it.
	c.queued = nil
	g.pending = slices.DeleteFunc(g.pending, func(p *Conn) bool { return p == c })
	g.ready = append(g.ready, q)
	g.mu.Unlock()
	g.flush()
	return len(b), nil
}

// WriteToUDPAddrPort is WriteToAddrPort.
func (c *Conn) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	return c.WriteToAddrPort(b, addr)
}

// WriteTo sends or queues one datagram to a *net.UDPAddr.
func (c *Conn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return c.UDPConn.WriteTo(b, addr)
	}
	return c.WriteToAddrPort(b, ua.AddrPort())
}

// WriteToUDP sends or queues one datagram.
func (c *Conn) WriteToUDP(b []byte, addr *net.UDPAddr) (int, error) {
	return c.WriteTo(b, addr)
}

// ReadFromAddrPort reads one datagram.
func (c *Conn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	if !c.ipv4 {
		return c.UDPConn.ReadFromUDPAddrPort(b)
	}
	return c.raw.read(c.UDPConn, b)
}

// Net is Pion's standard network with UDP sockets that batch in a Group: give it to
// ice.UDPMuxFromPortWithNet.
type Net struct {
	*stdnet.Net
	group *Group
}

// NewNet returns the standard network whose ListenUDP sockets batch in g.
func NewNet(g *Group) (*Net, error) {
	n, err := stdnet.NewNet()
	if err != nil {
		return nil, err
	}
	return &Net{Net: n, group: g}, nil
}

// ListenUDP listens like net.ListenUDP and wraps the socket.
func (n *Net) ListenUDP(network string, addr *net.UDPAddr) (transport.UDPConn, error) {
	conn, err := net.ListenUDP(network, addr)
	if err != nil {
		return nil, err
	}
	return NewConn(conn, n.group), nil
}

// batch is up to Size datagrams for one socket, copied into buffers it owns.
type batch struct {
	conn *Conn
	n    int
	bufs [Size][maxDatagram]byte
	lens [Size]int
	dsts [Size]netip.AddrPort
	sys  sysBatch // the system call's view of the same datagrams
}

func newBatch() *batch {
	b := &batch{}
	b.sys.init(b)
	return b
}

func (b *batch) add(p []byte, addr netip.AddrPort) {
	b.lens[b.n] = copy(b.bufs[b.n][:], p)
	b.dsts[b.n] = addr
	b.n++
}

func (b *batch) full() bool { return b.n == Size }

func (b *batch) reset() {
	b.n = 0
	b.conn = nil
}

// sendBatch sends b's datagrams; datagrams the kernel refuses are dropped, as a lost UDP
// datagram would be.
func (c *Conn) sendBatch(b *batch) {
	sent := 0
	for sent < b.n {
		n, err := b.sys.send(c.UDPConn, sent)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			sent++ // the first unsent datagram failed: drop it and go on
			continue
		}
		sent += n
	}
}
