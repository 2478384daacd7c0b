package turnserver

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"

	"github.com/pion/turn/v5"
)

var (
	errTCPRelay        = errors.New("turnserver: TCP relaying (RFC 6062) is not offered")
	errAddressFamily   = errors.New("turnserver: relay address family not offered")
	errRelayPortsInUse = errors.New("turnserver: no free relay port")
	errPortOutOfRange  = errors.New("turnserver: requested relay port outside the relay port range")
)

// relayAllocator hands pion/turn the relay sockets: UDP, bound to bindIP with a port from
// [minPort, maxPort] (any port when both are 0), advertised to the client as publicIP. Every
// socket is registered with the tracker, so Close and RevokeSession can close it.
//
// It refuses TCP relays (RFC 6062 allocations that dial out to peers over TCP): browsers
// never ask for them (a browser's relay candidate is always UDP, whatever the transport to
// the TURN server), and a TCP relay would let a client open arbitrary TCP connections from
// the node.
type relayAllocator struct {
	publicIP net.IP
	bindIP   netip.Addr
	minPort  uint16
	maxPort  uint16
	track    *tracker
}

var _ turn.RelayAddressGenerator = (*relayAllocator)(nil)

func (r *relayAllocator) Validate() error { return nil }

func (r *relayAllocator) AllocatePacketConn(c turn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	if (c.Network == "udp4") != r.bindIP.Is4() || (c.Network != "udp4" && c.Network != "udp6") {
		return nil, nil, fmt.Errorf("%w: %s", errAddressFamily, c.Network)
	}
	conn, err := r.listen(c.Network, c.RequestedPort)
	if err != nil {
		return nil, nil, err
	}
	local, ok := conn.LocalAddr().(*net.UDPAddr)
	if !ok {
		_ = conn.Close()
		return nil, nil, fmt.Errorf("turnserver: relay socket has address %T", conn.LocalAddr())
	}
	relay := r.track.addRelay(c.UserID, conn)
	return relay, &net.UDPAddr{IP: r.publicIP, Port: local.Port}, nil
}

// listen binds a relay socket: on the requested port (a reservation from an earlier EVEN-PORT
// allocation) if it is in range, otherwise on a random free port in range.
func (r *relayAllocator) listen(network string, requested int) (net.PacketConn, error) {
	listen := func(port int) (net.PacketConn, error) {
		addr := net.JoinHostPort(r.bindIP.String(), strconv.Itoa(port))
		return net.ListenPacket(network, addr) //nolint:noctx // binding a local socket does not block
	}
	if r.minPort == 0 {
		return listen(requested)
	}
	if requested != 0 {
		if requested < int(r.minPort) || requested > int(r.maxPort) {
			return nil, fmt.Errorf("%w: %d", errPortOutOfRange, requested)
		}
		return listen(requested)
	}
	// Probe from a random start so that concurrent allocations rarely collide, and give up
	// after a bounded number of binds when the range is (nearly) full.
	n := int(r.maxPort) - int(r.minPort) + 1
	start := rand.IntN(n)
	for i := range min(n, 128) {
		conn, err := listen(int(r.minPort) + (start+i)%n)
		if err == nil {
			return conn, nil
		}
	}
	return nil, fmt.Errorf("%w in %d-%d", errRelayPortsInUse, r.minPort, r.maxPort)
}

func (r *relayAllocator) AllocateListener(turn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	return nil, nil, errTCPRelay
}

func (r *relayAllocator) AllocateConn(turn.AllocateConnConfig) (net.Conn, error) {
	return nil, errTCPRelay
}

// peerPolicy decides which peer addresses a client may relay to (TURN CreatePermission and
// ChannelBind). Whoever holds a credential can make the server send UDP from the node to any
// address it names, so without a policy TURN is an open proxy into the node's own network:
//
//   - loopback (127.0.0.0/8, ::1) reaches services that listen only on the node itself,
//     trusting that nothing outside can reach them (metrics, debug endpoints, a local DNS
//     resolver, the embedded NATS in other deployments);
//   - the unspecified addresses (0.0.0.0/8, ::) are delivered to the node itself, loopback in
//     disguise;
//   - link-local addresses (169.254.0.0/16, fe80::/10) include cloud metadata services;
//   - multicast and broadcast would make the node shout to its whole segment.
//
// WebRTC peers never need any of those: they relay to the other side's candidates, which are
// routable addresses. Loopback may be allowed (AllowLoopbackPeers) for tests and
// single-machine development, where everything, including the SFU, is on 127.0.0.1. Operators
// add their private networks to Deny when the SFU is not on them.
type peerPolicy struct {
	allowLoopback bool
	deny          []netip.Prefix
}

// check returns "" when relaying to ip is allowed, otherwise why not.
func (p peerPolicy) check(ip netip.Addr) string {
	ip = ip.Unmap() // ::ffff:127.0.0.1 is 127.0.0.1
	switch {
	case !ip.IsValid():
		return "invalid address"
	case ip.IsLoopback():
		if !p.allowLoopback {
			return "loopback"
		}
	case ip.IsUnspecified() || (ip.Is4() && ip.As4()[0] == 0):
		return "unspecified"
	case ip.IsLinkLocalUnicast():
		return "link-local"
	case ip.IsMulticast() || ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "multicast or broadcast"
	}
	for _, prefix := range p.deny {
		if prefix.Contains(ip) {
			return "denied by Config.DenyPeers " + prefix.String()
		}
	}
	return ""
}
