package turnserver

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/turn/v5"
)

func TestIssueCredentials(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 500_000_000, time.UTC)
	c := IssueCredentials(testSecret, "sess:with:colons", 90*time.Second, now)

	want := time.Date(2026, 11, 23, 10, 1, 30, 0, time.UTC)
	if !c.Expires.Equal(want) {
		t.Errorf("Expires = %v, want %v", c.Expires, want)
	}
	if wantUser := strconv.FormatInt(want.Unix(), 10) + ":sess:with:colons"; c.Username != wantUser {
		t.Errorf("Username = %q, want %q", c.Username, wantUser)
	}
	expires, session, err := parseUsername(c.Username)
	if err != nil || !expires.Equal(want) || session != "sess:with:colons" {
		t.Errorf("parseUsername(%q) = %v, %q, %v", c.Username, expires, session, err)
	}
}

// The password must be what other implementations of the TURN REST scheme compute (coturn's
// use-auth-secret, pion's own helper), or credentials would not be portable.
func TestThePasswordIsTheTURNRESTHMAC(t *testing.T) {
	username, pass, err := turn.GenerateLongTermTURNRESTCredentials(string(testSecret), "s1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if got := password(testSecret, username); got != pass {
		t.Fatalf("password(%q) = %q, pion computes %q", username, got, pass)
	}
	exp, _, _ := strings.Cut(username, ":")
	sec, _ := strconv.ParseInt(exp, 10, 64)
	if c := IssueCredentials(testSecret, "s1", 0, time.Unix(sec, 0)); c.Username != username || c.Password != pass {
		t.Fatalf("IssueCredentials = %+v, pion made %q / %q", c, username, pass)
	}
}

func TestParseUsernameRefusesMalformedOnes(t *testing.T) {
	for _, u := range []string{"", "s1", ":s1", "123:", "abc:s1", "+123:s1", "-1:s1", "12 3:s1",
		"99999999999999999999:s1"} {
		if _, _, err := parseUsername(u); !errors.Is(err, ErrMalformedUsername) {
			t.Errorf("parseUsername(%q) error = %v, want ErrMalformedUsername", u, err)
		}
	}
}
