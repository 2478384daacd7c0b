package webhooks

import (
	"errors"
	"net/http"
	"net/netip"
	"strconv"
	"testing"
	"time"
)

func signedHeader(secret string, at time.Time, body []byte) http.Header {
	h := http.Header{}
	ts := at.Unix()
	h.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	h.Set(HeaderSignature, "v1="+Sign(secret, ts, body))
	return h
}

func TestVerifySignature(t *testing.T) {
	const secret = "whsec_test"
	body := []byte(`{"id":"evt_1"}`)
	now := time.Now()
	rotated := signedHeader(secret, now, body)
	rotated.Set(HeaderSignature, "v1="+Sign("whsec_new", now.Unix(), body)+" "+rotated.Get(HeaderSignature))
	other := signedHeader(secret, now, body)
	other.Set(HeaderSignature, "v0=abc, "+other.Get(HeaderSignature))

	cases := []struct {
		name   string
		header http.Header
		body   []byte
		want   error
	}{
		{"a good signature passes", signedHeader(secret, now, body), body, nil},
		{"one of several signatures may match", rotated, body, nil},
		{"unknown schemes are skipped", other, body, nil},
		{"a changed body fails", signedHeader(secret, now, body), []byte(`{"id":"evt_2"}`), ErrInvalidSignature},
		{"another secret fails", signedHeader("whsec_other", now, body), body, ErrInvalidSignature},
		{"an old timestamp fails", signedHeader(secret, now.Add(-10*time.Minute), body), body, ErrSignatureExpired},
		{"a future timestamp fails", signedHeader(secret, now.Add(10*time.Minute), body), body, ErrSignatureExpired},
		{"no headers fail", http.Header{}, body, ErrInvalidSignature},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := VerifySignature(secret, c.header, c.body, 5*time.Minute)
			if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	t.Run("a moved timestamp breaks the signature", func(t *testing.T) {
		h := signedHeader(secret, now, body)
		h.Set(HeaderTimestamp, strconv.FormatInt(now.Unix()+1, 10))
		if err := VerifySignature(secret, h, body, time.Minute); !errors.Is(err, ErrInvalidSignature) {
			t.Fatal(err)
		}
	})
	t.Run("no tolerance skips the time check", func(t *testing.T) {
		if err := VerifySignature(secret, signedHeader(secret, now.Add(-48*time.Hour), body), body, 0); err != nil {
			t.Fatal(err)
		}
	})
}

func TestPublicAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"93.184.216.34": true, "2606:2800:220:1:248:1893:25c8:1946": true, "8.8.8.8": true,
		"127.0.0.1": false, "127.5.5.5": false, "::1": false, "10.0.0.1": false, "172.16.3.4": false,
		"192.168.1.1": false, "169.254.169.254": false, "fe80::1%eth0": false, "fc00::1": false,
		"fd12::1": false, "0.0.0.0": false, "::": false, "100.64.1.1": false, "224.0.0.1": false,
		"ff02::1": false, "255.255.255.255": false, "::ffff:10.0.0.1": false, "::ffff:8.8.8.8": true,
		"198.18.0.1": false,
	} {
		if got := publicAddr(netip.MustParseAddr(addr)); got != want {
			t.Errorf("publicAddr(%s) = %v, want %v", addr, got, want)
		}
	}
}

func TestTheDialGuardRefusesLoopback(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:80", "[::1]:443", "[::ffff:127.0.0.1]:80", "169.254.169.254:80", "nonsense"} {
		if err := guardControl("tcp", addr, nil); !errors.Is(err, ErrForbiddenTarget) {
			t.Errorf("%s: %v", addr, err)
		}
	}
	if err := guardControl("tcp", "93.184.216.34:443", nil); err != nil {
		t.Errorf("public address: %v", err)
	}
}
