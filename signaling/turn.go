package signaling

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/assist-video/assist/media/turnserver"
	"github.com/assist-video/assist/rooms"
	"github.com/assist-video/assist/signaling/wire"
)

// turnCredentialTTL is how long a browser's TURN credential lasts: long enough for a call,
// short enough that a leaked one is soon useless. A credential names one session, and is
// refused as soon as that session ends.
const turnCredentialTTL = 4 * time.Hour

// startTURN runs the embedded TURN server when configured. Its secret is shared by all nodes
// through JetStream, so any node's credentials work on any node's TURN server.
func (s *Server) startTURN(ctx context.Context) error {
	if !s.cfg.TURN() {
		return nil
	}
	secret, err := s.rooms.LoadOrCreateSecret(ctx, "turn-secret", func() []byte {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		return b
	})
	if err != nil {
		return fmt.Errorf("turn secret: %w", err)
	}
	cfg := turnserver.Config{
		Secret:             secret,
		PublicIP:           s.turnPublicIP(),
		ListenUDP:          s.cfg.TURNUDP,
		ListenTCP:          s.cfg.TURNTCP,
		ListenTLS:          s.cfg.TURNTLS,
		SessionActive:      s.turnSessionActive,
		AllowLoopbackPeers: s.cfg.TURNAllowLoopback,
		RelayBindIP:        s.cfg.TURNRelayIP,
		RelayPortMin:       uint16(s.cfg.TURNMinPort), // config checked 0 or 1024..65535
		RelayPortMax:       uint16(s.cfg.TURNMaxPort),
		Logger:             s.log.With("component", "turn"),
	}
	if s.cfg.TURNTLS != "" {
		cert, err := tls.LoadX509KeyPair(s.cfg.TLSCert, s.cfg.TLSKey)
		if err != nil {
			return fmt.Errorf("turn-tls: %w", err)
		}
		cfg.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	s.turnSecret = secret
	s.turn, err = turnserver.Start(cfg)
	return err
}

func (s *Server) turnPublicIP() string {
	if s.cfg.TURNPublicIP != "" {
		return s.cfg.TURNPublicIP
	}
	host, _, _ := net.SplitHostPort(s.cfg.Addr)
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		return ip.String()
	}
	return "127.0.0.1"
}

// turnSessionActive accepts credentials of sessions that have not ended; TURN credentials name
// "{org}.{session}".
func (s *Server) turnSessionActive(id string) bool {
	if strings.HasPrefix(id, echoRelayPrefix) {
		until, ok := s.echoRelays.Load(id)
		return ok && time.Now().Before(until.(time.Time))
	}
	org, session, ok := strings.Cut(id, ".")
	if !ok {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	sess, err := s.rooms.Session(ctx, org, session)
	return err == nil && sess.State != rooms.SessionEnded
}

// A setup test without a session (the standalone /test page) may use the embedded TURN
// server for a short while under a scope of its own, "echo.<random>": long enough for one echo
// test, so the page can tell whether media works only through the relay.
const (
	echoRelayPrefix = "echo."
	echoRelayTTL    = 90 * time.Second
)

// echoRelayServers hands a setup test without a session a TURN credential of its own scope.
func (s *Server) echoRelayServers() []wire.ICEServer {
	if s.turn == nil {
		return nil
	}
	now := time.Now()
	s.echoRelays.Range(func(k, v any) bool { // forget the expired ones (at most a few dozen)
		if now.After(v.(time.Time)) {
			s.echoRelays.Delete(k)
		}
		return true
	})
	scope := echoRelayPrefix + newObjectID("")
	s.echoRelays.Store(scope, now.Add(echoRelayTTL))
	cred := turnserver.IssueCredentials(s.turnSecret, scope, echoRelayTTL, now)
	return []wire.ICEServer{{URLs: s.turn.URLs(s.turnPublicIP()), Username: cred.Username, Credential: cred.Password}}
}

// iceServersFor are the STUN/TURN servers handed to one participant's browser: the configured
// ones, and the embedded TURN server with a credential for this session only.
func (s *Server) iceServersFor(orgID, sessionID string) []wire.ICEServer {
	servers := []wire.ICEServer{}
	if len(s.cfg.ICEServers) > 0 {
		servers = append(servers, wire.ICEServer{URLs: s.cfg.ICEServers})
	}
	if s.turn != nil {
		cred := turnserver.IssueCredentials(s.turnSecret, orgID+"."+sessionID, turnCredentialTTL, time.Now())
		host := s.turnPublicIP()
		if u, err := url.Parse(s.baseURL); err == nil && s.cfg.TURNTLS != "" {
			host = u.Hostname() // turns: needs the name on the certificate
		}
		servers = append(servers, wire.ICEServer{URLs: s.turn.URLs(host), Username: cred.Username, Credential: cred.Password})
	}
	return servers
}

// closeSessionMedia frees an ended session's media on this node: its recordings (stopped and
// kept), its SFU room and its TURN relays.
func (s *Server) closeSessionMedia(orgID, sessionID string) {
	s.stopRecordings(orgID, sessionID)
	s.sfu.CloseRoom(sessionID)
	s.closeRemoteMedia(orgID, sessionID) // the room may be on another node (forward.go)
	if s.turn != nil {
		s.turn.RevokeSession(orgID + "." + sessionID)
	}
}
