package signaling

import (
	"net"
	"testing"
	"time"

	"github.com/pion/turn/v5"

	"github.com/assist-video/assist/signaling/config"
)

// TestTURNRelaysLandInTheConfiguredPortRange: with turn-min-port and turn-max-port set (and
// relays bound to every interface with turn-relay-ip, as behind 1:1 NAT), every relay the
// embedded TURN server allocates for a browser's credential has a port in the range and is
// advertised at turn-public-ip.
func TestTURNRelaysLandInTheConfiguredPortRange(t *testing.T) {
	const minPort, maxPort = 53100, 53199
	cfg := turnTestConfig(t)
	cfg.TURNPublicIP = "127.0.0.1"
	cfg.TURNRelayIP = "0.0.0.0"
	cfg.TURNMinPort, cfg.TURNMaxPort = minPort, maxPort
	ts := startTestServer(t, cfg)
	s := ts.createSession(t)
	servers := ts.iceServersFor(s.OrganizationID, s.ID)
	if len(servers) != 1 || servers[0].Username == "" {
		t.Fatalf("ice servers = %+v, want the embedded TURN server with a credential", servers)
	}
	cred := servers[0]

	seen := map[int]bool{}
	for _, transport := range []string{"udp", "tcp"} {
		t.Run("a relay allocated over "+transport+" is in range", func(t *testing.T) {
			var conn net.PacketConn
			var server string
			switch transport {
			case "udp":
				server = ts.turn.Addrs().UDP.String()
				pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				conn = pc
			case "tcp":
				server = ts.turn.Addrs().TCP.String()
				c, err := net.DialTimeout("tcp", server, 5*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				conn = turn.NewSTUNConn(c)
			}
			defer conn.Close()
			client, err := turn.NewClient(&turn.ClientConfig{STUNServerAddr: server, TURNServerAddr: server,
				Conn: conn, Username: cred.Username, Password: cred.Credential})
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			if err := client.Listen(); err != nil {
				t.Fatal(err)
			}
			relay, err := client.Allocate()
			if err != nil {
				t.Fatalf("Allocate: %v", err)
			}
			defer relay.Close()
			addr, ok := relay.LocalAddr().(*net.UDPAddr)
			if !ok || !addr.IP.Equal(net.IPv4(127, 0, 0, 1)) || addr.Port < minPort || addr.Port > maxPort {
				t.Fatalf("relay address %v: want 127.0.0.1 (turn-public-ip) and a port in %d-%d", relay.LocalAddr(), minPort, maxPort)
			}
			if seen[addr.Port] {
				t.Fatalf("relay port %d handed out twice", addr.Port)
			}
			seen[addr.Port] = true
		})
	}
}

// turnTestConfig is newTURNTestServer's configuration, for tests that change it first.
func turnTestConfig(t *testing.T) config.Config {
	t.Helper()
	cfg := config.Defaults()
	cfg.Addr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.BootstrapAPIKey = testAPIKey
	cfg.BootstrapPassword = testPassword
	cfg.ShutdownTimeout = 5 * time.Second
	cfg.TURNUDP = "127.0.0.1:0"
	cfg.TURNTCP = "127.0.0.1:0"
	cfg.TURNAllowLoopback = true
	return cfg
}
