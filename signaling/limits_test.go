package signaling

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/assist-video/assist/signaling/api"
	"github.com/assist-video/assist/signaling/config"
	"github.com/assist-video/assist/signaling/problem"
)

// limitedConfig is the suite's configuration with the limits a test sets.
func limitedConfig(t *testing.T, set func(*config.Config)) config.Config {
	t.Helper()
	cfg := config.Defaults()
	cfg.Addr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.NodeID = "test"
	cfg.BootstrapAPIKey = testAPIKey
	cfg.BootstrapPassword = testPassword
	cfg.ShutdownTimeout = 5 * time.Second
	set(&cfg)
	return cfg
}

// fromAddress is an HTTP client whose connections come from another loopback address, so a
// test can be two clients.
func fromAddress(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
}

func call(t *testing.T, client *http.Client, method, url, bearer, body string) (*http.Response, problem.Details) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var p problem.Details
	if resp.Header.Get("Content-Type") == problem.ContentType {
		_ = json.Unmarshal(data, &p)
	}
	return resp, p
}

// wantTooMany checks a 429 problem with a usable Retry-After.
func wantTooMany(t *testing.T, resp *http.Response, p problem.Details) {
	t.Helper()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("status = %d, want 429", resp.StatusCode)
	}
	if resp.Header.Get("Content-Type") != problem.ContentType || p.Status != 429 || !strings.HasSuffix(p.Type, "/rate-limited") {
		t.Errorf("not a rate-limited problem: %s %+v", resp.Header.Get("Content-Type"), p)
	}
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || secs < 1 || secs > 120 {
		t.Errorf("Retry-After = %q, want whole seconds", resp.Header.Get("Retry-After"))
	}
}

func TestAPIKeyIsLimitedAfterItsBurst(t *testing.T) {
	ts := startTestServer(t, limitedConfig(t, func(c *config.Config) { c.APIRate, c.APIBurst = 1, 3 }))
	for i := range 3 {
		if resp, p := call(t, http.DefaultClient, "GET", ts.URL+"/v1/sessions", ts.APIKey, ""); resp.StatusCode != 200 {
			t.Fatalf("request %d within the burst: %d %+v", i, resp.StatusCode, p)
		}
	}
	resp, p := call(t, http.DefaultClient, "GET", ts.URL+"/v1/sessions", ts.APIKey, "")
	wantTooMany(t, resp, p)

	t.Run("another credential from the same address is not held back", func(t *testing.T) {
		var login api.LoginResult
		if resp := ts.do(t, "POST", "/v1/auth/login", "", api.Login{Email: testEmail, Password: testPassword}, &login); resp.StatusCode != 200 {
			t.Fatalf("sign-in: %d", resp.StatusCode)
		}
		if resp, p := call(t, http.DefaultClient, "GET", ts.URL+"/v1/sessions", login.Token, ""); resp.StatusCode != 200 {
			t.Fatalf("console token: %d %+v", resp.StatusCode, p)
		}
	})

	t.Run("the key is served again once its bucket refills", func(t *testing.T) {
		wait, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		time.Sleep(time.Duration(wait) * time.Second)
		if resp, p := call(t, http.DefaultClient, "GET", ts.URL+"/v1/sessions", ts.APIKey, ""); resp.StatusCode != 200 {
			t.Fatalf("after Retry-After: %d %+v", resp.StatusCode, p)
		}
	})
}

func TestUnauthenticatedRoutesAreLimitedPerAddress(t *testing.T) {
	ts := startTestServer(t, limitedConfig(t, func(c *config.Config) { c.IPRate, c.IPBurst = 1, 4 }))
	// Forged download links and guessed API keys spend the same budget of the address.
	for i := range 2 {
		if resp, _ := call(t, http.DefaultClient, "GET", ts.URL+"/v1/downloads/forged", "", ""); resp.StatusCode != 403 {
			t.Fatalf("download %d: %d", i, resp.StatusCode)
		}
		if resp, _ := call(t, http.DefaultClient, "GET", ts.URL+"/v1/sessions", "ak_guessed", ""); resp.StatusCode != 401 {
			t.Fatalf("guessed key %d: %d", i, resp.StatusCode)
		}
	}
	resp, p := call(t, http.DefaultClient, "GET", ts.URL+"/v1/sessions", "ak_guessed", "")
	wantTooMany(t, resp, p)
	resp, p = call(t, http.DefaultClient, "GET", ts.URL+"/c/not-a-link", "", "")
	wantTooMany(t, resp, p)

	t.Run("the real key still works from that address", func(t *testing.T) {
		if resp, p := call(t, http.DefaultClient, "GET", ts.URL+"/v1/sessions", ts.APIKey, ""); resp.StatusCode != 200 {
			t.Fatalf("status = %d %+v", resp.StatusCode, p)
		}
	})
	t.Run("another address is not held back", func(t *testing.T) {
		if resp, _ := call(t, fromAddress("127.0.0.2"), "GET", ts.URL+"/v1/downloads/forged", "", ""); resp.StatusCode != 403 {
			t.Fatalf("status = %d", resp.StatusCode)
		}
	})
}

func TestSignInAttemptsAreLimitedPerAddressAndPerEmail(t *testing.T) {
	ts := startTestServer(t, limitedConfig(t, func(c *config.Config) { c.LoginRate = 3 }))
	login := func(client *http.Client, email, password string) (*http.Response, problem.Details) {
		body, _ := json.Marshal(api.Login{Email: email, Password: password})
		return call(t, client, "POST", ts.URL+"/v1/auth/login", "", string(body))
	}
	for i := range 3 {
		if resp, _ := login(http.DefaultClient, testEmail, "guess "+strconv.Itoa(i)); resp.StatusCode != 401 {
			t.Fatalf("guess %d: %d", i, resp.StatusCode)
		}
	}
	t.Run("the right password is refused too once the guesses are spent", func(t *testing.T) {
		resp, p := login(http.DefaultClient, testEmail, testPassword)
		wantTooMany(t, resp, p)
	})
	t.Run("the account is protected from another address", func(t *testing.T) {
		resp, p := login(fromAddress("127.0.0.2"), " Specialist@Example.com", testPassword)
		wantTooMany(t, resp, p)
	})
	t.Run("the guessing address cannot move on to other accounts", func(t *testing.T) {
		resp, p := login(http.DefaultClient, "other@example.com", "whatever1")
		wantTooMany(t, resp, p)
	})
	t.Run("another address and account are not held back", func(t *testing.T) {
		if resp, _ := login(fromAddress("127.0.0.3"), "other@example.com", "whatever1"); resp.StatusCode != 401 {
			t.Fatalf("status = %d", resp.StatusCode)
		}
	})
}

func TestSocketsPerAddressAreLimitedBeforeTheUpgrade(t *testing.T) {
	ts := startTestServer(t, limitedConfig(t, func(c *config.Config) { c.MaxSocketsPerIP = 3 }))
	url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/v1/signal"
	var open []*websocket.Conn
	for range 3 {
		conn, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			t.Fatalf("socket within the limit: %v", err)
		}
		t.Cleanup(func() { conn.Close() })
		answered(t, conn)
		open = append(open, conn)
	}
	_, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err == nil || resp == nil {
		t.Fatalf("a fourth socket was accepted (err %v)", err)
	}
	var p problem.Details
	_ = json.NewDecoder(resp.Body).Decode(&p)
	resp.Body.Close()
	wantTooMany(t, resp, p)

	t.Run("another address may open sockets", func(t *testing.T) {
		d := websocket.Dialer{NetDial: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).Dial}
		conn, _, err := d.Dial(url, nil)
		if err != nil {
			t.Fatal(err)
		}
		answered(t, conn)
		conn.Close()
	})
	t.Run("a closed socket gives its place back", func(t *testing.T) {
		open[0].Close()
		deadline := time.Now().Add(5 * time.Second)
		for {
			conn, _, err := websocket.DefaultDialer.Dial(url, nil)
			if err == nil {
				answered(t, conn)
				conn.Close()
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no socket 5s after one closed: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// answered waits until the server's participant loop answers on a new socket, so that the
// test does not end while the server is still setting the socket up.
func answered(t *testing.T, conn *websocket.Conn) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping?"}`)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := conn.ReadMessage(); err != nil {
		t.Fatalf("no answer on the socket: %v", err)
	}
}

func TestSessionSocketsAreCounted(t *testing.T) {
	s := &Server{limits: newLimits(limitedConfig(t, func(c *config.Config) { c.MaxSocketsPerSession = 2 }))}
	r1, werr := s.claimSessionSocket("ses_a")
	if werr != nil {
		t.Fatal(werr)
	}
	r2, werr := s.claimSessionSocket("ses_a")
	if werr != nil {
		t.Fatal(werr)
	}
	if _, werr := s.claimSessionSocket("ses_a"); werr == nil || werr.Code != "rate_limited" {
		t.Fatalf("a third socket in a session of 2: %v", werr)
	}
	if _, werr := s.claimSessionSocket("ses_b"); werr != nil {
		t.Fatalf("another session: %v", werr)
	}
	r1()
	r1() // releasing twice gives back one place, not two
	if _, werr := s.claimSessionSocket("ses_a"); werr != nil {
		t.Fatalf("after a release: %v", werr)
	}
	if _, werr := s.claimSessionSocket("ses_a"); werr == nil {
		t.Fatal("a double release freed two places")
	}
	r2()
}

func TestBucketsForgetIdleKeys(t *testing.T) {
	b := newBuckets(10, 20) // full again after 2s
	now := time.Unix(1_000_000, 0)
	for i := range 10_000 {
		b.take(fmt.Sprint("10.0.", i/256, ".", i%256), now)
	}
	if n := b.size(); n != 10_000 {
		t.Fatalf("size = %d", n)
	}
	b.take("late", now.Add(3*time.Second))
	if n := b.size(); n != 1 {
		t.Fatalf("after the buckets refilled, %d keys are still held", n)
	}
}

func TestClientIPGroupsIPv6By64(t *testing.T) {
	for _, c := range []struct{ remote, want string }{
		{"192.0.2.7:5555", "192.0.2.7"},
		{"[2001:db8:1:2:aaaa::1]:443", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:bbbb::9]:443", "2001:db8:1:2::/64"},
		{"[::ffff:192.0.2.7]:1", "192.0.2.7"},
	} {
		if got := clientIP(&http.Request{RemoteAddr: c.remote}); got != c.want {
			t.Errorf("clientIP(%s) = %s, want %s", c.remote, got, c.want)
		}
	}
}

func TestSlowlorisIsCutOffWithinTheHeaderTimeout(t *testing.T) {
	ts := startTestServer(t, limitedConfig(t, func(c *config.Config) {
		c.ReadHeaderTimeout, c.ReadTimeout = time.Second, 2*time.Second
	}))
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	go func() { // one header byte every 100ms, never done
		if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n"); err != nil {
			return
		}
		for i := 0; ctx.Err() == nil; i++ {
			if _, err := conn.Write([]byte{"X-Slow: abcdefgh\r\n"[i%18]}); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.ReadAll(conn)
	elapsed := time.Since(start)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server still held the connection after %s", elapsed)
	}
	if elapsed > 3*time.Second {
		t.Fatalf("cut off after %s, want about the 1s header timeout", elapsed)
	}
	t.Logf("slow client cut off after %s", elapsed.Round(time.Millisecond))
}

func TestOversizedHeadersAreRefused(t *testing.T) {
	ts := newTestServer(t)
	req, _ := http.NewRequest("GET", ts.URL+"/healthz", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 64<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status = %d, want 431", resp.StatusCode)
	}
}

// rawUpload sends an upload's headers, then its body through send, and returns the status
// line the server answers with and how long the whole took.
func rawUpload(t *testing.T, ts *testServer, path, bearer string, length int, send func(w io.Writer) error) (string, time.Duration) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n", path, bearer, length)
	sent := make(chan error, 1)
	go func() { sent <- send(conn) }()
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		line = "closed: " + err.Error()
	}
	return strings.TrimSpace(line), time.Since(start)
}

func TestUploadsFromSlowPhonesOutliveTheReadTimeout(t *testing.T) {
	ts := startTestServer(t, limitedConfig(t, func(c *config.Config) {
		c.ReadHeaderTimeout, c.ReadTimeout, c.UploadTimeout = 500*time.Millisecond, time.Second, time.Minute
	}))
	c := ts.startCall(t)
	tok := linkToken(c.session.CustomerURL)
	path := "/v1/sessions/" + c.session.ID + "/files?name=report.pdf"

	t.Run("a steady slow upload arrives whole", func(t *testing.T) {
		body := append([]byte("%PDF-1.4\n"), make([]byte, 256<<10)...)
		line, took := rawUpload(t, ts, path, tok, len(body), func(w io.Writer) error {
			for len(body) > 0 { // 16 KiB every 100ms: 160 KiB/s, for about 1.6s
				n := min(16<<10, len(body))
				if _, err := w.Write(body[:n]); err != nil {
					return err
				}
				body = body[n:]
				time.Sleep(100 * time.Millisecond)
			}
			return nil
		})
		if !strings.Contains(line, " 201 ") {
			t.Fatalf("answer %q after %s", line, took)
		}
		if took < time.Second {
			t.Fatalf("the upload took %s: not slower than the read timeout, the test proves nothing", took)
		}
	})

	t.Run("a stalled upload is cut off after one read timeout", func(t *testing.T) {
		line, took := rawUpload(t, ts, path, tok, 100_000, func(w io.Writer) error {
			_, err := io.WriteString(w, "%PDF-1.4\nsome bytes, then silence")
			return err
		})
		if strings.Contains(line, " 201 ") || took > 4*time.Second {
			t.Fatalf("answer %q after %s", line, took)
		}
		t.Logf("stalled upload: %q after %s", line, took.Round(time.Millisecond))
	})

	t.Run("a trickling upload is cut off for being too slow", func(t *testing.T) {
		line, took := rawUpload(t, ts, path, tok, 100_000, func(w io.Writer) error {
			if _, err := io.WriteString(w, "%PDF-1.4\n"); err != nil {
				return err
			}
			for range 200 { // 10 bytes every 200ms: never idle, never done
				if _, err := w.Write([]byte("0123456789")); err != nil {
					return err
				}
				time.Sleep(200 * time.Millisecond)
			}
			return nil
		})
		if strings.Contains(line, " 201 ") || took > 5*time.Second {
			t.Fatalf("answer %q after %s", line, took)
		}
		t.Logf("trickling upload: %q after %s", line, took.Round(time.Millisecond))
	})
}
