package turnserver

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v4"
)

func TestAClientRelaysThroughTheServer(t *testing.T) {
	noLeaks(t)
	const minPort, maxPort = 51000, 51999
	ts := startServer(t, func(c *Config) { c.RelayPortMin, c.RelayPortMax = minPort, maxPort })
	echo := startEcho(t)

	for _, transport := range []string{"udp", "tcp"} {
		t.Run("over "+transport, func(t *testing.T) {
			client := dialTURN(t, ts, transport, ts.credentials("s1"), nil)
			relay := allocate(t, client)

			addr, ok := relay.LocalAddr().(*net.UDPAddr)
			if !ok || !addr.IP.Equal(net.IPv4(127, 0, 0, 1)) || addr.Port < minPort || addr.Port > maxPort {
				t.Fatalf("relay address %v: want 127.0.0.1 and a port in %d-%d", relay.LocalAddr(), minPort, maxPort)
			}
			if n := ts.Allocations(); n != 1 {
				t.Errorf("Allocations() = %d, want 1", n)
			}
			roundTrip(t, relay, echo, "hello over "+transport)
			roundTrip(t, relay, echo, "and again") // now over the channel binding, if it is ready

			if err := relay.Close(); err != nil {
				t.Fatalf("close relay: %v", err)
			}
			waitFor(t, 5*time.Second, "the allocation to go", func() bool { return ts.Allocations() == 0 })
		})
	}
}

func TestTheServerRefusesBadCredentials(t *testing.T) {
	noLeaks(t)
	other := IssueCredentials([]byte("another-secret-0123456789"), "s1", time.Hour, time.Now())

	cases := []struct {
		name   string
		creds  func(ts *testServer) Credentials
		reason string
	}{
		{"an expired credential", func(ts *testServer) Credentials {
			c := ts.credentials("s1")
			ts.clock.Advance(time.Hour + time.Second)
			return c
		}, "credential expired"},
		{"a wrong password", func(ts *testServer) Credentials {
			c := ts.credentials("s1")
			c.Password = other.Password
			return c
		}, "wrong password"},
		{"a session that is not live", func(ts *testServer) Credentials {
			return ts.credentials("s2")
		}, ErrSessionNotLive.Error()},
		{"a session that has ended before its credential expired", func(ts *testServer) Credentials {
			c := ts.credentials("s1")
			ts.live.end("s1")
			return c
		}, ErrSessionNotLive.Error()},
		{"a username without an expiry", func(*testServer) Credentials {
			return Credentials{Username: "s1", Password: password(testSecret, "s1")}
		}, "malformed username"},
		{"a username whose expiry is not a number", func(*testServer) Credentials {
			return Credentials{Username: "soon:s1", Password: password(testSecret, "soon:s1")}
		}, "malformed username"},
		{"a username without a session", func(*testServer) Credentials {
			return Credentials{Username: "99999999999:", Password: password(testSecret, "99999999999:")}
		}, "malformed username"},
	}
	for _, tc := range cases {
		t.Run(tc.name+" gets 401", func(t *testing.T) {
			ts := startServer(t, nil)
			client := dialTURN(t, ts, "udp", tc.creds(ts), nil)
			relay, err := client.Allocate()
			if err == nil {
				_ = relay.Close()
				t.Fatal("Allocate succeeded")
			}
			if code := turnCode(err); code != int(stun.CodeUnauthorized) {
				t.Fatalf("Allocate: %v (code %d), want 401", err, code)
			}
			ts.waitLog(t, tc.reason)
			if n := ts.Allocations(); n != 0 {
				t.Errorf("Allocations() = %d, want 0", n)
			}
		})
	}
}

func TestTheServerRefusesToRelayToItsOwnLoopback(t *testing.T) {
	noLeaks(t)
	ts := startServer(t, func(c *Config) { c.AllowLoopbackPeers = false })
	echo := startEcho(t)
	client := dialTURN(t, ts, "udp", ts.credentials("s1"), nil)
	relay := allocate(t, client) // allocating is fine: the relay address is not a peer

	err := client.CreatePermission(echo)
	if code := turnCode(err); code != int(stun.CodeForbidden) {
		t.Fatalf("CreatePermission(%v): %v (code %d), want 403", echo, err, code)
	}
	if _, err := relay.WriteTo([]byte("let me in"), echo); err == nil {
		t.Fatalf("WriteTo(%v) through the relay succeeded", echo)
	}
	ts.waitLog(t, "refused TURN relay to peer")
}

func TestTURNOverTLS(t *testing.T) {
	noLeaks(t)
	cert, roots := selfSigned(t)
	ts := startServer(t, func(c *Config) {
		c.ListenUDP, c.ListenTCP = "", ""
		c.ListenTLS = "127.0.0.1:0"
		c.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	})
	echo := startEcho(t)

	urls := ts.URLs("turn.example.com")
	_, port, _ := net.SplitHostPort(ts.Addrs().TLS.String())
	if want := "turns:turn.example.com:" + port + "?transport=tcp"; len(urls) != 1 || urls[0] != want {
		t.Fatalf("URLs = %q, want [%q]", urls, want)
	}

	client := dialTURN(t, ts, "tls", ts.credentials("s1"), roots)
	relay := allocate(t, client)
	roundTrip(t, relay, echo, "hello over tls")
}

func TestRevokeSessionEndsItsRelaysAtOnce(t *testing.T) {
	noLeaks(t)
	ts := startServer(t, func(c *Config) { c.MaxAllocationsPerSession = 4 })
	ts.live.begin("s2")
	creds := ts.credentials("s1")
	allocate(t, dialTURN(t, ts, "udp", creds, nil))
	allocate(t, dialTURN(t, ts, "tcp", creds, nil))
	allocate(t, dialTURN(t, ts, "udp", ts.credentials("s2"), nil))

	ts.live.end("s1")
	if n := ts.RevokeSession("s1"); n != 2 {
		t.Fatalf("RevokeSession closed %d relays, want 2", n)
	}
	waitFor(t, 5*time.Second, "s1's allocations to go", func() bool { return ts.Allocations() == 1 })

	_, err := dialTURN(t, ts, "udp", creds, nil).Allocate()
	if code := turnCode(err); code != int(stun.CodeUnauthorized) {
		t.Fatalf("Allocate after the session ended: %v (code %d), want 401", err, code)
	}
}

func TestASessionCannotHoldMoreRelaysThanItsQuota(t *testing.T) {
	noLeaks(t)
	ts := startServer(t, func(c *Config) { c.MaxAllocationsPerSession = 1 })
	creds := ts.credentials("s1")
	allocate(t, dialTURN(t, ts, "udp", creds, nil))

	_, err := dialTURN(t, ts, "udp", creds, nil).Allocate()
	if code := turnCode(err); code != int(stun.CodeAllocQuotaReached) {
		t.Fatalf("second Allocate: %v (code %d), want 486", err, code)
	}
}

func TestCloseEndsConnectedClientsAndRelays(t *testing.T) {
	noLeaks(t)
	ts := startServer(t, nil)
	creds := ts.credentials("s1")
	allocate(t, dialTURN(t, ts, "udp", creds, nil))
	allocate(t, dialTURN(t, ts, "tcp", creds, nil))
	if n := ts.Allocations(); n != 2 {
		t.Fatalf("Allocations() = %d, want 2", n)
	}
	// And a client that connected and said nothing yet.
	silent, err := net.DialTimeout("tcp", ts.Addrs().TCP.String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()

	// The clients are still connected; Close must not wait for them to leave.
	if err := ts.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := silent.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := silent.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the server kept a client connection open after Close: read returned %v", err)
	}
	if n := ts.Allocations(); n != 0 {
		t.Fatalf("Allocations() after Close = %d, want 0", n)
	}
	if err := ts.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestURLsNameEveryEnabledListener(t *testing.T) {
	noLeaks(t)
	cert, _ := selfSigned(t)
	ts := startServer(t, func(c *Config) {
		c.ListenTLS = "127.0.0.1:0"
		c.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	})
	port := func(a net.Addr) string { _, p, _ := net.SplitHostPort(a.String()); return p }
	a := ts.Addrs()
	want := []string{
		"turn:[2001:db8::1]:" + port(a.UDP) + "?transport=udp",
		"turn:[2001:db8::1]:" + port(a.TCP) + "?transport=tcp",
		"turns:[2001:db8::1]:" + port(a.TLS) + "?transport=tcp",
	}
	if got := ts.URLs("2001:db8::1"); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("URLs = %q, want %q", got, want)
	}
}

func TestStartRefusesABadConfig(t *testing.T) {
	noLeaks(t)
	good := func() Config {
		return Config{
			Secret:        testSecret,
			PublicIP:      "127.0.0.1",
			ListenUDP:     "127.0.0.1:0",
			SessionActive: func(string) bool { return true },
			Logger:        slog.New(slog.DiscardHandler),
		}
	}
	cases := []struct {
		name    string
		adjust  func(*Config)
		setting string
	}{
		{"a short secret", func(c *Config) { c.Secret = []byte("short") }, "Secret"},
		{"no session hook", func(c *Config) { c.SessionActive = nil }, "SessionActive"},
		{"no listener", func(c *Config) { c.ListenUDP = "" }, "ListenUDP"},
		{"TLS without a certificate", func(c *Config) { c.ListenTLS = "127.0.0.1:0" }, "TLSConfig"},
		{"half a port range", func(c *Config) { c.RelayPortMin = 50000 }, "RelayPortMax"},
		{"an upside-down port range", func(c *Config) { c.RelayPortMin, c.RelayPortMax = 50010, 50000 }, "RelayPortMin"},
		{"a public IP that is not one", func(c *Config) { c.PublicIP = "turn.example.com" }, "PublicIP"},
		{"an unspecified public IP", func(c *Config) { c.PublicIP = "0.0.0.0" }, "PublicIP"},
		{"a public IP not on this node", func(c *Config) { c.PublicIP = "192.0.2.1" }, "RelayBindIP"},
		{"mixed address families", func(c *Config) { c.RelayBindIP = "::" }, "RelayBindIP"},
		{"an invalid listen address", func(c *Config) { c.ListenUDP = "127.0.0.1:99999" }, "ListenUDP"},
	}
	for _, tc := range cases {
		t.Run(tc.name+" is refused naming "+tc.setting, func(t *testing.T) {
			cfg := good()
			tc.adjust(&cfg)
			s, err := Start(cfg)
			if err == nil {
				_ = s.Close()
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tc.setting) {
				t.Fatalf("error %q does not name %s", err, tc.setting)
			}
		})
	}
	t.Run("a public IP behind NAT starts with RelayBindIP 0.0.0.0", func(t *testing.T) {
		cfg := good()
		cfg.PublicIP, cfg.RelayBindIP = "192.0.2.1", "0.0.0.0"
		s, err := Start(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestPeerPolicy(t *testing.T) {
	strict := peerPolicy{}
	dev := peerPolicy{allowLoopback: true, deny: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	cases := []struct {
		peer        string
		strict, dev bool // allowed?
	}{
		{"203.0.113.7", true, true},
		{"2001:db8::7", true, true},
		{"192.168.1.20", true, true},
		{"10.1.2.3", true, false},
		{"127.0.0.1", false, true},
		{"127.8.9.10", false, true},
		{"::1", false, true},
		{"::ffff:127.0.0.1", false, true},
		{"0.0.0.0", false, false},
		{"0.1.2.3", false, false},
		{"::", false, false},
		{"169.254.169.254", false, false},
		{"fe80::1", false, false},
		{"224.0.0.251", false, false},
		{"ff02::1", false, false},
		{"255.255.255.255", false, false},
	}
	for _, tc := range cases {
		ip := netip.MustParseAddr(tc.peer)
		if got := strict.check(ip) == ""; got != tc.strict {
			t.Errorf("default policy: relay to %s allowed = %v, want %v", tc.peer, got, tc.strict)
		}
		if got := dev.check(ip) == ""; got != tc.dev {
			t.Errorf("loopback-allowing policy: relay to %s allowed = %v, want %v", tc.peer, got, tc.dev)
		}
	}
}
