// Package turnserver is Assist's embedded TURN server (RFC 8656), so that customers behind
// firewalls that block UDP, or everything but port 443, can still reach the SFU: their browser
// relays its media through this server over UDP, TCP or TLS.
//
// Credentials are short-lived and per session, in the "REST API for TURN" shared-secret scheme:
// signaling hands each participant IssueCredentials(secret, sessionID, ttl, now) together with
// Server.URLs, and the server accepts them only until they expire and only while the session
// is live. There is no static password.
//
// The TURN protocol itself is pion/turn's; this package adds the credential check, the relay
// sockets (port range, advertised address), the rule about which peers may be relayed to, and
// a lifecycle that closes every socket on Close.
package turnserver

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/turn/v5"
)

// DefaultRealm is the TURN realm when Config.Realm is empty.
const DefaultRealm = "assist"

// minSecretLen is the shortest shared secret Start accepts: 128 bits.
const minSecretLen = 16

// Config configures a Server. Secret, PublicIP, SessionActive and at least one listener are
// required.
type Config struct {
	// Realm is the TURN realm; "" means DefaultRealm.
	Realm string
	// Secret is the shared secret credentials are signed with (IssueCredentials), at least 16
	// bytes. Every node that issues or checks credentials for the same URLs needs the same one.
	Secret []byte

	// PublicIP is the relay address advertised to clients: the node's IP as browsers reach it
	// (127.0.0.1 in tests).
	PublicIP string
	// RelayBindIP is the local address relay sockets are bound to; "" means PublicIP. Set it
	// (for example to 0.0.0.0) when PublicIP is not on any interface of the node, as behind
	// a cloud provider's 1:1 NAT.
	RelayBindIP string
	// RelayPortMin and RelayPortMax bound the relay ports (inclusive), to match a firewall
	// rule; both 0 means any port the system hands out.
	RelayPortMin, RelayPortMax uint16

	// ListenUDP, ListenTCP and ListenTLS are the addresses the server listens on for clients,
	// for example "0.0.0.0:3478", "0.0.0.0:3478" and "0.0.0.0:443"; "" turns one off, port 0
	// picks a free port (see Addrs). ListenTLS ("turns:") needs TLSConfig with a certificate
	// browsers trust for the host name in URLs: it is the one that gets through networks that
	// allow only HTTPS.
	ListenUDP string
	ListenTCP string
	ListenTLS string
	TLSConfig *tls.Config

	// SessionActive reports whether a session is live. A credential of a session for which it
	// returns false is refused even before it expires. It is called on every authenticated
	// TURN request (allocate, refresh, permission, channel bind), from many goroutines, so it
	// must be quick and safe for concurrent use.
	SessionActive func(sessionID string) bool

	// AllowLoopbackPeers lets clients relay to loopback addresses (127.0.0.0/8, ::1). Off by
	// default, because then TURN would be a proxy into services that listen only on the node
	// itself; tests and single-machine setups, where the SFU is on 127.0.0.1, turn it on.
	// Unspecified, link-local, multicast and broadcast peers are always refused.
	AllowLoopbackPeers bool
	// DenyPeers are further peer networks clients may not relay to, for example the node's
	// private networks when the SFU is not on them.
	DenyPeers []netip.Prefix
	// MaxAllocationsPerSession caps the relays one session's credential may hold at once (a
	// browser makes one or two per transport it is offered); 0 means no cap.
	MaxAllocationsPerSession int

	// Logger receives the server's logs, and Pion's at Debug and below; nil means
	// slog.Default().
	Logger *slog.Logger
	// Now is the clock for credential expiry; nil means time.Now.
	Now func() time.Time
}

// Addrs are the addresses a Server listens on; nil for a listener that is off.
type Addrs struct {
	UDP net.Addr
	TCP net.Addr
	TLS net.Addr
}

// Server is a running TURN server. Start it with Start and stop it with Close.
type Server struct {
	realm         string
	secret        []byte
	sessionActive func(string) bool
	now           func() time.Time
	policy        peerPolicy
	maxPerSession int
	log           *slog.Logger

	turn  *turn.Server
	addrs Addrs
	track *tracker
	// deleted gets a token whenever pion deletes an allocation, so Close can wait for the
	// allocation count to reach zero without polling.
	deleted chan struct{}

	closeOnce sync.Once
	closeErr  error
}

// closeTimeout bounds how long Close waits for pion to drop its allocations.
const closeTimeout = 5 * time.Second

// Start validates cfg, opens the listeners and starts serving.
func Start(cfg Config) (*Server, error) {
	s := &Server{
		realm:         cfg.Realm,
		secret:        append([]byte(nil), cfg.Secret...),
		sessionActive: cfg.SessionActive,
		now:           cfg.Now,
		policy: peerPolicy{
			allowLoopback: cfg.AllowLoopbackPeers,
			deny:          append([]netip.Prefix(nil), cfg.DenyPeers...),
		},
		maxPerSession: cfg.MaxAllocationsPerSession,
		log:           cfg.Logger,
		track:         newTracker(),
		deleted:       make(chan struct{}, 1),
	}
	if s.realm == "" {
		s.realm = DefaultRealm
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("component", "turn")

	relays, err := validate(cfg)
	if err != nil {
		return nil, err
	}
	relays.track = s.track

	var (
		packetConns []turn.PacketConnConfig
		listeners   []turn.ListenerConfig
		closers     []func() error // what to close if Start fails half-way
	)
	fail := func(err error) (*Server, error) {
		for _, c := range closers {
			_ = c()
		}
		return nil, err
	}
	if cfg.ListenUDP != "" {
		pc, err := net.ListenPacket("udp", cfg.ListenUDP) //nolint:noctx // Start has no context; binding does not block
		if err != nil {
			return fail(fmt.Errorf("turnserver: Config.ListenUDP: %w", err))
		}
		closers = append(closers, pc.Close)
		s.addrs.UDP = pc.LocalAddr()
		packetConns = append(packetConns, turn.PacketConnConfig{
			PacketConn:            pc,
			RelayAddressGenerator: relays,
			PermissionHandler:     s.permitPeer,
		})
	}
	for _, l := range []struct {
		setting, addr string
		tls           *tls.Config
		dst           *net.Addr
	}{
		{"ListenTCP", cfg.ListenTCP, nil, &s.addrs.TCP},
		{"ListenTLS", cfg.ListenTLS, cfg.TLSConfig, &s.addrs.TLS},
	} {
		if l.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", l.addr) //nolint:noctx // as above
		if err != nil {
			return fail(fmt.Errorf("turnserver: Config.%s: %w", l.setting, err))
		}
		closers = append(closers, ln.Close)
		*l.dst = ln.Addr()
		var served net.Listener = trackingListener{Listener: ln, t: s.track}
		if l.tls != nil {
			served = tls.NewListener(served, l.tls.Clone())
		}
		listeners = append(listeners, turn.ListenerConfig{
			Listener:              served,
			RelayAddressGenerator: relays,
			PermissionHandler:     s.permitPeer,
		})
	}

	srv, err := turn.NewServer(turn.ServerConfig{
		PacketConnConfigs: packetConns,
		ListenerConfigs:   listeners,
		LoggerFactory:     pionLogs{log: s.log},
		Realm:             s.realm,
		AuthHandler:       s.authenticate,
		QuotaHandler:      s.withinQuota,
		EventHandler: turn.EventHandler{
			OnAuth:              s.onAuth,
			OnAllocationCreated: s.onAllocationCreated,
			OnAllocationDeleted: s.onAllocationDeleted,
		},
	})
	if err != nil {
		return fail(fmt.Errorf("turnserver: %w", err))
	}
	s.turn = srv
	attrs := []any{"public_ip", cfg.PublicIP}
	for _, l := range []struct {
		name string
		addr net.Addr
	}{{"udp", s.addrs.UDP}, {"tcp", s.addrs.TCP}, {"tls", s.addrs.TLS}} {
		if l.addr != nil {
			attrs = append(attrs, l.name, l.addr.String())
		}
	}
	s.log.Info("TURN server started", attrs...)
	return s, nil
}

// validate checks cfg and returns the relay allocator it describes. Errors name the setting.
func validate(cfg Config) (*relayAllocator, error) {
	switch {
	case len(cfg.Secret) < minSecretLen:
		return nil, fmt.Errorf("turnserver: Config.Secret must be at least %d bytes", minSecretLen)
	case cfg.SessionActive == nil:
		return nil, errors.New("turnserver: Config.SessionActive is required")
	case cfg.ListenUDP == "" && cfg.ListenTCP == "" && cfg.ListenTLS == "":
		return nil, errors.New("turnserver: no listener: set Config.ListenUDP, ListenTCP or ListenTLS")
	case cfg.ListenTLS != "" && (cfg.TLSConfig == nil ||
		(len(cfg.TLSConfig.Certificates) == 0 && cfg.TLSConfig.GetCertificate == nil &&
			cfg.TLSConfig.GetConfigForClient == nil)):
		return nil, errors.New("turnserver: Config.ListenTLS needs Config.TLSConfig with a certificate")
	case (cfg.RelayPortMin == 0) != (cfg.RelayPortMax == 0):
		return nil, errors.New("turnserver: set both Config.RelayPortMin and RelayPortMax, or neither")
	case cfg.RelayPortMin > cfg.RelayPortMax:
		return nil, fmt.Errorf("turnserver: Config.RelayPortMin %d is above RelayPortMax %d",
			cfg.RelayPortMin, cfg.RelayPortMax)
	case cfg.MaxAllocationsPerSession < 0:
		return nil, errors.New("turnserver: Config.MaxAllocationsPerSession must not be negative")
	}
	public, err := netip.ParseAddr(cfg.PublicIP)
	if err != nil || public.IsUnspecified() || public.Zone() != "" {
		return nil, fmt.Errorf("turnserver: Config.PublicIP %q is not a usable IP address", cfg.PublicIP)
	}
	public = public.Unmap()
	bind := public
	if cfg.RelayBindIP != "" {
		bind, err = netip.ParseAddr(cfg.RelayBindIP)
		if err != nil {
			return nil, fmt.Errorf("turnserver: Config.RelayBindIP %q is not an IP address", cfg.RelayBindIP)
		}
		bind = bind.Unmap()
		if bind.Is4() != public.Is4() {
			return nil, fmt.Errorf("turnserver: Config.RelayBindIP %s and PublicIP %s are of different address families",
				bind, public)
		}
	}
	// Fail now, not at the first allocation, when relays cannot be bound.
	probe, err := net.ListenPacket("udp", net.JoinHostPort(bind.String(), "0")) //nolint:noctx // local bind
	if err != nil {
		setting := "RelayBindIP"
		if cfg.RelayBindIP == "" {
			setting = "PublicIP (not an address of this node? set RelayBindIP, e.g. to 0.0.0.0)"
		}
		return nil, fmt.Errorf("turnserver: cannot bind relays to Config.%s: %w", setting, err)
	}
	_ = probe.Close()
	return &relayAllocator{
		publicIP: net.IP(public.AsSlice()),
		bindIP:   bind,
		minPort:  cfg.RelayPortMin,
		maxPort:  cfg.RelayPortMax,
	}, nil
}

// Close stops the server: it closes the listeners, every client connection and every relay,
// and waits (up to a few seconds) until pion has dropped all allocations. It is safe to call
// more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		err := s.turn.Close()
		s.track.closeAll()
		timeout := time.NewTimer(closeTimeout)
		defer timeout.Stop()
		for s.turn.AllocationCount() > 0 {
			select {
			case <-s.deleted:
			case <-timeout.C:
				err = errors.Join(err, fmt.Errorf("turnserver: %d allocations still open after %v",
					s.turn.AllocationCount(), closeTimeout))
				s.closeErr = err
				return
			}
		}
		if err != nil {
			err = fmt.Errorf("turnserver: close: %w", err)
		}
		s.closeErr = err
		s.log.Info("TURN server stopped")
	})
	return s.closeErr
}

// Addrs returns the addresses the server listens on, with the ports actually bound.
func (s *Server) Addrs() Addrs { return s.addrs }

// URLs returns the ICE server URLs for the enabled listeners, for browsers that reach this
// node as host: "turn:host:port?transport=udp", "turn:host:port?transport=tcp" and
// "turns:host:port?transport=tcp". Pair them with IssueCredentials.
func (s *Server) URLs(host string) []string {
	var urls []string
	add := func(scheme string, addr net.Addr, transport string) {
		if addr == nil {
			return
		}
		_, port, err := net.SplitHostPort(addr.String())
		if err != nil {
			return
		}
		urls = append(urls, scheme+":"+net.JoinHostPort(host, port)+"?transport="+transport)
	}
	add("turn", s.addrs.UDP, "udp")
	add("turn", s.addrs.TCP, "tcp")
	add("turns", s.addrs.TLS, "tcp")
	return urls
}

// Allocations returns the number of live relay allocations.
func (s *Server) Allocations() int { return s.turn.AllocationCount() }

// RevokeSession closes the relays of a session that has ended, and returns how many there
// were. Its credentials are already refused from the moment SessionActive says the session is
// over, but an allocation made before lives until it next needs refreshing (up to ten
// minutes); this ends it now.
func (s *Server) RevokeSession(sessionID string) int {
	n := s.track.closeSession(sessionID)
	if n > 0 {
		s.log.Info("revoked TURN relays", "session", sessionID, "relays", n)
	}
	return n
}

// authenticate is pion's AuthHandler: it checks the username and returns the session id as
// the user id and the long-term key derived from the password the username must come with.
// Pion then checks the request's MESSAGE-INTEGRITY with that key, which is where a wrong
// password fails (see onAuth).
func (s *Server) authenticate(ra *turn.RequestAttributes) (string, []byte, bool) {
	sessionID, err := s.checkUsername(ra.Username, ra.Realm)
	if err != nil {
		s.log.Info("refused TURN credential", "reason", err, "username", ra.Username,
			"client", ra.SrcAddr, "method", ra.Method.String())
		return "", nil, false
	}
	key := turn.GenerateAuthKey(ra.Username, ra.Realm, password(s.secret, ra.Username))
	return sessionID, key, true
}

func (s *Server) checkUsername(username, realm string) (string, error) {
	if realm != s.realm {
		return "", fmt.Errorf("%w %q", ErrWrongRealm, realm)
	}
	expires, sessionID, err := parseUsername(username)
	if err != nil {
		return "", err
	}
	if !s.now().Before(expires) {
		return "", fmt.Errorf("%w at %s", ErrExpired, expires.UTC().Format(time.RFC3339))
	}
	if !s.sessionActive(sessionID) {
		return "", ErrSessionNotLive
	}
	return sessionID, nil
}

// onAuth hears the verdict after authenticate accepted the username: false means the
// password (MESSAGE-INTEGRITY) was wrong.
func (s *Server) onAuth(src, dst net.Addr, _, username, _ string, method string, ok bool) {
	if !ok {
		s.log.Info("refused TURN credential", "reason", "wrong password", "username", username,
			"client", src, "transport", s.transport(dst), "method", method)
	}
}

// transport names the listener a client reached, from the server's end of the connection.
// (Pion's own protocol argument to its event handlers says UDP for TCP clients too: it is the
// relay's protocol.)
func (s *Server) transport(local net.Addr) string {
	tcp, ok := local.(*net.TCPAddr)
	if !ok {
		return "udp"
	}
	if tlsAddr, ok := s.addrs.TLS.(*net.TCPAddr); ok && tlsAddr.Port == tcp.Port {
		return "tls"
	}
	return "tcp"
}

func (s *Server) withinQuota(sessionID, _ string, src net.Addr) bool {
	if s.maxPerSession == 0 || s.track.relayCount(sessionID) < s.maxPerSession {
		return true
	}
	s.log.Info("refused TURN allocation: session quota reached", "session", sessionID,
		"client", src, "max", s.maxPerSession)
	return false
}

// permitPeer is pion's PermissionHandler, asked on CreatePermission and ChannelBind.
func (s *Server) permitPeer(client net.Addr, peer net.IP) bool {
	ip, _ := netip.AddrFromSlice(peer)
	if reason := s.policy.check(ip); reason != "" {
		s.log.Info("refused TURN relay to peer", "peer", peer.String(), "reason", reason,
			"client", client)
		return false
	}
	return true
}

func (s *Server) onAllocationCreated(src, dst net.Addr, _, sessionID, _ string, relay net.Addr, _ int) {
	s.log.Debug("TURN allocation created", "session", sessionID, "client", src,
		"transport", s.transport(dst), "relay", relay)
}

func (s *Server) onAllocationDeleted(src, dst net.Addr, _, sessionID, _ string) {
	s.log.Debug("TURN allocation deleted", "session", sessionID, "client", src, "transport", s.transport(dst))
	select {
	case s.deleted <- struct{}{}:
	default: // a token is already waiting; Close re-reads the count anyway
	}
}
