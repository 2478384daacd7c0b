package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/assist-video/assist/rooms/bus"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const waitLimit = 15 * time.Second

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// testConfig retries fast, so the retry paths run in milliseconds. The HTTP timeout stays
// generous: a loaded CI machine must not turn a good attempt into a failed one.
func testConfig() Config {
	return Config{
		HTTPTimeout:         5 * time.Second,
		RetryInitial:        50 * time.Millisecond,
		RetryMax:            200 * time.Millisecond,
		GiveUpAfter:         time.Minute,
		AllowPrivateTargets: true,
		Logger:              quietLogger(),
	}
}

func openBus(t *testing.T, dir string) *bus.Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := bus.Open(ctx, bus.Config{StoreDir: dir, Name: "test", Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func openWebhooks(t *testing.T, b *bus.Bus, cfg Config) *Webhooks {
	t.Helper()
	w, err := Open(t.Context(), b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// setup opens a bus in a fresh store and Webhooks on it; the bus closes after the test.
func setup(t *testing.T, cfg Config) (*bus.Bus, *Webhooks) {
	t.Helper()
	b := openBus(t, t.TempDir())
	t.Cleanup(b.Close)
	return b, openWebhooks(t, b, cfg)
}

// startDeliverer runs a Deliverer until the returned stop is called (or the test ends) and
// checks that Run then returns nil.
func startDeliverer(t *testing.T, w *Webhooks) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	d := w.NewDeliverer()
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(waitLimit):
				t.Errorf("Run did not return within %v of its context ending", waitLimit)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// receivedRequest is one request as a receiver saw it.
type receivedRequest struct {
	method string
	header http.Header
	body   []byte
	sigErr error // VerifySignature's verdict with the receiver's secret
}

// receiver is an integrator's endpoint: it checks signatures and answers as respond says.
type receiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	secrets []string
	reqs    []receivedRequest
	respond func(n int, r *http.Request) int // status for the n-th request (from 1)
}

func newReceiver(t *testing.T, respond func(n int, r *http.Request) int) *receiver {
	rc := &receiver{respond: respond}
	rc.srv = httptest.NewUnstartedServer(rc)
	rc.srv.Start()
	t.Cleanup(rc.srv.Close)
	return rc
}

func ok(int, *http.Request) int { return http.StatusNoContent }

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	var sigErr error = errors.New("receiver has no secret")
	for _, s := range rc.secrets {
		if sigErr = VerifySignature(s, r.Header, body, 5*time.Minute); sigErr == nil {
			break
		}
	}
	rc.reqs = append(rc.reqs, receivedRequest{method: r.Method, header: r.Header.Clone(), body: body, sigErr: sigErr})
	n := len(rc.reqs)
	respond := rc.respond
	rc.mu.Unlock()
	w.WriteHeader(respond(n, r))
}

func (rc *receiver) url() string { return rc.srv.URL + "/hooks/assist" }

// trust sets the secrets the receiver accepts signatures from.
func (rc *receiver) trust(secrets ...string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.secrets = secrets
}

func (rc *receiver) requests() []receivedRequest {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.reqs)
}

func (rc *receiver) eventIDs() []string {
	var ids []string
	for _, r := range rc.requests() {
		ids = append(ids, r.header.Get(HeaderID))
	}
	return ids
}

// eventually waits for cond, polling, and fails the test at the deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", waitLimit, what)
		case <-tick.C:
		}
	}
}

func deliveriesOf(t *testing.T, w *Webhooks, org, endpointID string) []Delivery {
	t.Helper()
	ds, err := w.Deliveries(t.Context(), org, endpointID, 100)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func allInState(t *testing.T, w *Webhooks, org, endpointID string, n int, state State) func() bool {
	return func() bool {
		ds := deliveriesOf(t, w, org, endpointID)
		if len(ds) != n {
			return false
		}
		for _, d := range ds {
			if d.State != state {
				return false
			}
		}
		return true
	}
}

func createEndpoint(t *testing.T, w *Webhooks, org string, rc *receiver, events ...string) *Endpoint {
	t.Helper()
	ep, err := w.Create(t.Context(), org, rc.url(), events)
	if err != nil {
		t.Fatal(err)
	}
	rc.trust(ep.Secret)
	return ep
}

func publish(t *testing.T, w *Webhooks, ev Event) {
	t.Helper()
	if err := w.Publish(t.Context(), ev); err != nil {
		t.Fatal(err)
	}
}

func sessionCreated(id string) Event {
	return Event{ID: id, OrgID: "org_a", Type: TypeSessionCreated, Data: json.RawMessage(`{"session_id":"ses_1"}`)}
}

func TestADeliveryArrivesSignedWithTheDocumentedShape(t *testing.T) {
	_, w := setup(t, testConfig())
	rc := newReceiver(t, ok)
	ep := createEndpoint(t, w, "org_a", rc, TypeSessionCreated)
	if !strings.HasPrefix(ep.Secret, "whsec_") || !ep.Enabled {
		t.Fatalf("new endpoint: %+v", ep)
	}
	startDeliverer(t, w)
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	ev := sessionCreated("evt_1")
	ev.Time = at
	publish(t, w, ev)
	eventually(t, "the delivery", allInState(t, w, "org_a", ep.ID, 1, StateDelivered))

	reqs := rc.requests()
	if len(reqs) != 1 {
		t.Fatalf("receiver got %d requests", len(reqs))
	}
	r := reqs[0]
	if r.sigErr != nil {
		t.Fatalf("signature: %v", r.sigErr)
	}
	if r.method != http.MethodPost || r.header.Get("Content-Type") != "application/json" || r.header.Get(HeaderID) != "evt_1" {
		t.Fatalf("request: %s %v", r.method, r.header)
	}
	if !strings.HasPrefix(r.header.Get(HeaderSignature), "v1=") || r.header.Get(HeaderTimestamp) == "" {
		t.Fatalf("signature headers: %v", r.header)
	}
	var body map[string]json.RawMessage // a test may look at the raw shape
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"id": `"evt_1"`, "type": `"session.created"`, "created_at": `"2026-11-23T10:00:00Z"`,
		"organization_id": `"org_a"`, "data": `{"session_id":"ses_1"}`,
	}
	if len(body) != len(want) {
		t.Fatalf("body has fields %v, want exactly %v", body, want)
	}
	for k, v := range want {
		if string(body[k]) != v {
			t.Errorf("body %s = %s, want %s", k, body[k], v)
		}
	}

	d := deliveriesOf(t, w, "org_a", ep.ID)[0]
	if d.Attempts != 1 || d.LastStatus != http.StatusNoContent || d.DeliveredAt == nil || d.EventID != "evt_1" ||
		d.Type != TypeSessionCreated || !d.NextAttemptAt.IsZero() || d.LastError != "" {
		t.Fatalf("delivery record: %+v", d)
	}

	t.Run("the secret is not shown again", func(t *testing.T) {
		got, err := w.Get(t.Context(), "org_a", ep.ID)
		if err != nil || got.Secret != "" || got.URL != rc.url() {
			t.Fatalf("Get: %v %+v", err, got)
		}
		list, err := w.List(t.Context(), "org_a")
		if err != nil || len(list) != 1 || list[0].Secret != "" {
			t.Fatalf("List: %v %+v", err, list)
		}
	})
}

func TestARotatedSecretSignsAlongsideTheOldOneDuringTheGracePeriod(t *testing.T) {
	_, w := setup(t, testConfig())
	rc := newReceiver(t, ok)
	ep := createEndpoint(t, w, "org_a", rc, AllEvents)
	rotated, err := w.RotateSecret(t.Context(), "org_a", ep.ID)
	if err != nil || rotated.Secret == ep.Secret || !strings.HasPrefix(rotated.Secret, "whsec_") {
		t.Fatalf("RotateSecret: %v %+v", err, rotated)
	}
	startDeliverer(t, w)
	publish(t, w, sessionCreated("evt_rot"))
	eventually(t, "the delivery", allInState(t, w, "org_a", ep.ID, 1, StateDelivered))
	r := rc.requests()[0]
	for name, secret := range map[string]string{"old": ep.Secret, "new": rotated.Secret} {
		if err := VerifySignature(secret, r.header, r.body, time.Minute); err != nil {
			t.Errorf("%s secret: %v", name, err)
		}
	}
}

func TestAFailingReceiverGetsRetriedUntilItRecovers(t *testing.T) {
	_, w := setup(t, testConfig())
	rc := newReceiver(t, func(n int, _ *http.Request) int {
		if n <= 2 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	ep := createEndpoint(t, w, "org_a", rc, AllEvents)
	startDeliverer(t, w)
	publish(t, w, sessionCreated("evt_retry"))
	eventually(t, "the delivery", allInState(t, w, "org_a", ep.ID, 1, StateDelivered))
	d := deliveriesOf(t, w, "org_a", ep.ID)[0]
	if d.Attempts != 3 || d.LastStatus != http.StatusOK {
		t.Fatalf("delivery: %+v", d)
	}
	if ids := rc.eventIDs(); !slices.Equal(ids, []string{"evt_retry", "evt_retry", "evt_retry"}) {
		t.Fatalf("receiver saw %v", ids)
	}
	for i, r := range rc.requests() {
		if r.sigErr != nil {
			t.Errorf("attempt %d: %v", i+1, r.sigErr)
		}
	}
}

func TestAReceiverThatTimesOutGetsRetried(t *testing.T) {
	cfg := testConfig()
	cfg.HTTPTimeout = 300 * time.Millisecond
	_, w := setup(t, cfg)
	rc := newReceiver(t, func(n int, r *http.Request) int {
		if n == 1 {
			select { // hang past the client's timeout; the client hanging up ends it
			case <-r.Context().Done():
			case <-time.After(waitLimit):
			}
		}
		return http.StatusOK
	})
	ep := createEndpoint(t, w, "org_a", rc, AllEvents)
	startDeliverer(t, w)
	publish(t, w, sessionCreated("evt_slow"))
	eventually(t, "the delivery", allInState(t, w, "org_a", ep.ID, 1, StateDelivered))
	// The first attempt timed out; a loaded machine may time out a later one too.
	if d := deliveriesOf(t, w, "org_a", ep.ID)[0]; d.Attempts < 2 {
		t.Fatalf("delivery: %+v after %d requests", d, len(rc.requests()))
	}
}

func TestAFailedAttemptIsRecordedWithItsReason(t *testing.T) {
	_, w := setup(t, testConfig())
	rc := newReceiver(t, func(int, *http.Request) int { return http.StatusServiceUnavailable })
	ep := createEndpoint(t, w, "org_a", rc, AllEvents)
	startDeliverer(t, w)
	publish(t, w, sessionCreated("evt_503"))
	eventually(t, "two failed attempts", func() bool {
		ds := deliveriesOf(t, w, "org_a", ep.ID)
		return len(ds) == 1 && ds[0].Attempts >= 2
	})
	d := deliveriesOf(t, w, "org_a", ep.ID)[0]
	if d.State != StatePending || d.LastStatus != http.StatusServiceUnavailable ||
		!strings.Contains(d.LastError, "503") || d.NextAttemptAt.IsZero() || d.DeliveredAt != nil {
		t.Fatalf("delivery: %+v", d)
	}
}

func TestDeliveriesGiveUpAfterTheirTime(t *testing.T) {
	cfg := testConfig()
	cfg.GiveUpAfter = 300 * time.Millisecond
	_, w := setup(t, cfg)
	rc := newReceiver(t, func(int, *http.Request) int { return http.StatusBadGateway })
	ep := createEndpoint(t, w, "org_a", rc, AllEvents)
	startDeliverer(t, w)
	publish(t, w, sessionCreated("evt_doomed"))
	eventually(t, "the delivery to fail", allInState(t, w, "org_a", ep.ID, 1, StateFailed))
	d := deliveriesOf(t, w, "org_a", ep.ID)[0]
	if d.Attempts < 2 || !strings.Contains(d.LastError, "502") || d.Attempts != len(rc.requests()) {
		t.Fatalf("delivery: %+v after %d requests", d, len(rc.requests()))
	}
}

func TestAReceiverThatIsDownForAWhileGetsEverythingWhenItIsBack(t *testing.T) {
	_, w := setup(t, testConfig())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // down: connections are refused

	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.Header.Get(HeaderID)]++
		mu.Unlock()
	}))
	srv.Listener.Close() // replaced by one on addr below
	ep, err := w.Create(t.Context(), "org_a", "http://"+addr+"/hook", []string{AllEvents})
	if err != nil {
		t.Fatal(err)
	}
	startDeliverer(t, w)
	const n = 5
	for i := range n {
		publish(t, w, sessionCreated(fmt.Sprintf("evt_down_%d", i)))
	}
	eventually(t, "every delivery to have failed twice", func() bool {
		ds := deliveriesOf(t, w, "org_a", ep.ID)
		for _, d := range ds {
			if d.Attempts < 2 || d.State != StatePending || d.LastStatus != 0 || d.LastError == "" {
				return false
			}
		}
		return len(ds) == n
	})

	// Back up, on the same address.
	eventually(t, "the address to be free again", func() bool {
		ln, err = net.Listen("tcp", addr)
		return err == nil
	})
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	eventually(t, "every delivery", allInState(t, w, "org_a", ep.ID, n, StateDelivered))
	mu.Lock()
	defer mu.Unlock()
	for i := range n {
		if id := fmt.Sprintf("evt_down_%d", i); seen[id] != 1 {
			t.Errorf("%s arrived %d times", id, seen[id])
		}
	}
}

func TestNothingIsLostAcrossARestart(t *testing.T) {
	dir := t.TempDir()
	var healthy atomic.Bool
	rc := newReceiver(t, func(int, *http.Request) int {
		if healthy.Load() {
			return http.StatusOK
		}
		return http.StatusInternalServerError
	})

	b1 := openBus(t, dir)
	t.Cleanup(b1.Close) // in case the test stops early; closing twice is harmless
	w1 := openWebhooks(t, b1, testConfig())
	ep := createEndpoint(t, w1, "org_a", rc, AllEvents)
	stop := startDeliverer(t, w1)
	publish(t, w1, sessionCreated("evt_r0"))
	eventually(t, "a failed attempt", func() bool {
		ds := deliveriesOf(t, w1, "org_a", ep.ID)
		return len(ds) == 1 && ds[0].Attempts >= 1
	})
	stop()
	for i := 1; i <= 3; i++ { // queued with no Deliverer running
		publish(t, w1, sessionCreated(fmt.Sprintf("evt_r%d", i)))
	}
	b1.Close()

	healthy.Store(true)
	b2 := openBus(t, dir)
	t.Cleanup(b2.Close)
	w2 := openWebhooks(t, b2, testConfig())
	startDeliverer(t, w2)
	eventually(t, "every delivery after the restart", allInState(t, w2, "org_a", ep.ID, 4, StateDelivered))
	got := map[string]bool{}
	for _, id := range rc.eventIDs() {
		got[id] = true
	}
	for i := range 4 {
		if !got[fmt.Sprintf("evt_r%d", i)] {
			t.Errorf("evt_r%d never arrived; receiver saw %v", i, rc.eventIDs())
		}
	}
}

func TestPublishingAnEventTwiceDeliversItOnce(t *testing.T) {
	cfg := testConfig()
	cfg.Workers = 1 // deliveries in queue order, so the sentinel arriving proves nothing else is queued
	b, w := setup(t, cfg)
	rc := newReceiver(t, ok)
	ep := createEndpoint(t, w, "org_a", rc, AllEvents)
	for range 3 {
		publish(t, w, sessionCreated("evt_dup"))
	}
	stream, err := b.JS.Stream(t.Context(), streamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(t.Context())
	if err != nil || info.State.Msgs != 1 {
		t.Fatalf("queued messages: %v %+v", err, info.State)
	}
	if ds := deliveriesOf(t, w, "org_a", ep.ID); len(ds) != 1 {
		t.Fatalf("deliveries: %+v", ds)
	}
	startDeliverer(t, w)
	eventually(t, "the delivery", allInState(t, w, "org_a", ep.ID, 1, StateDelivered))
	publish(t, w, sessionCreated("evt_dup")) // again, after it was delivered
	publish(t, w, sessionCreated("evt_sentinel"))
	eventually(t, "the sentinel", allInState(t, w, "org_a", ep.ID, 2, StateDelivered))
	if ids := rc.eventIDs(); !slices.Equal(ids, []string{"evt_dup", "evt_sentinel"}) {
		t.Fatalf("receiver saw %v", ids)
	}
}

func TestRedeliverSendsTheSameEventAgain(t *testing.T) {
	_, w := setup(t, testConfig())
	rc := newReceiver(t, ok)
	ep := createEndpoint(t, w, "org_a", rc, AllEvents)
	startDeliverer(t, w)
	publish(t, w, sessionCreated("evt_again"))
	eventually(t, "the delivery", allInState(t, w, "org_a", ep.ID, 1, StateDelivered))
	first := deliveriesOf(t, w, "org_a", ep.ID)[0]

	if err := w.Redeliver(t.Context(), "org_b", first.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another organisation's redeliver: %v", err)
	}
	if err := w.Redeliver(t.Context(), "org_a", "dlv_nosuch"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown delivery: %v", err)
	}
	if err := w.Redeliver(t.Context(), "org_a", first.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the redelivery", allInState(t, w, "org_a", ep.ID, 2, StateDelivered))
	ds := deliveriesOf(t, w, "org_a", ep.ID)
	if ds[1].ID != first.ID || ds[0].ID == first.ID || ds[0].EventID != "evt_again" || ds[0].Attempts != 1 {
		t.Fatalf("deliveries, newest first: %+v", ds)
	}
	reqs := rc.requests()
	if len(reqs) != 2 || reqs[1].header.Get(HeaderID) != "evt_again" || reqs[1].sigErr != nil ||
		string(reqs[0].body) != string(reqs[1].body) {
		t.Fatalf("requests: %+v", reqs)
	}
}

func TestEndpointsGetOnlyTheEventTypesTheyChose(t *testing.T) {
	_, w := setup(t, testConfig())
	created := newReceiver(t, ok)
	everything := newReceiver(t, ok)
	disabled := newReceiver(t, ok)
	otherOrg := newReceiver(t, ok)
	epCreated := createEndpoint(t, w, "org_a", created, TypeSessionCreated)
	epAll := createEndpoint(t, w, "org_a", everything, AllEvents)
	epOff := createEndpoint(t, w, "org_a", disabled, AllEvents)
	epOther := createEndpoint(t, w, "org_b", otherOrg, AllEvents)
	if _, err := w.SetEnabled(t.Context(), "org_a", epOff.ID, false); err != nil {
		t.Fatal(err)
	}

	publish(t, w, sessionCreated("evt_c"))
	publish(t, w, Event{ID: "evt_e", OrgID: "org_a", Type: TypeSessionEnded})
	// Deliveries are recorded by the time Publish returns.
	for _, c := range []struct {
		name string
		org  string
		ep   *Endpoint
		want int
	}{
		{"session.created only", "org_a", epCreated, 1},
		{"all events", "org_a", epAll, 2},
		{"disabled", "org_a", epOff, 0},
		{"another organisation", "org_b", epOther, 0},
	} {
		if got := len(deliveriesOf(t, w, c.org, c.ep.ID)); got != c.want {
			t.Errorf("%s: %d deliveries, want %d", c.name, got, c.want)
		}
	}
	startDeliverer(t, w)
	eventually(t, "the deliveries", func() bool {
		return allInState(t, w, "org_a", epCreated.ID, 1, StateDelivered)() &&
			allInState(t, w, "org_a", epAll.ID, 2, StateDelivered)()
	})
	if ids := created.eventIDs(); !slices.Equal(ids, []string{"evt_c"}) {
		t.Errorf("session.created endpoint saw %v", ids)
	}
	if ids := everything.eventIDs(); len(ids) != 2 {
		t.Errorf("all-events endpoint saw %v", ids)
	}
	if len(disabled.requests())+len(otherOrg.requests()) != 0 {
		t.Errorf("disabled or other organisation's endpoint was called")
	}
	if ds := deliveriesOf(t, w, "org_a", ""); len(ds) != 3 {
		t.Errorf("all of org_a's deliveries: %d", len(ds))
	}
}

func TestDeliveriesToADeletedEndpointFail(t *testing.T) {
	_, w := setup(t, testConfig())
	rc := newReceiver(t, ok)
	ep := createEndpoint(t, w, "org_a", rc, AllEvents)
	publish(t, w, sessionCreated("evt_orphan"))
	if err := w.Delete(t.Context(), "org_a", ep.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Get(t.Context(), "org_a", ep.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete: %v", err)
	}
	startDeliverer(t, w)
	eventually(t, "the delivery to fail", allInState(t, w, "org_a", ep.ID, 1, StateFailed))
	if d := deliveriesOf(t, w, "org_a", ep.ID)[0]; d.LastError != "endpoint deleted" || len(rc.requests()) != 0 {
		t.Fatalf("delivery: %+v", d)
	}
}

func TestTheGuardRefusesPrivateTargets(t *testing.T) {
	b, permissive := setup(t, testConfig())
	strictCfg := testConfig()
	strictCfg.AllowPrivateTargets = false
	strict := openWebhooks(t, b, strictCfg)

	t.Run("at registration", func(t *testing.T) {
		for _, u := range []string{
			"http://127.0.0.1:8080/hook", "http://[::1]/hook", "https://10.1.2.3/", "http://192.168.0.10/",
			"http://169.254.169.254/latest/meta-data/", "http://localhost:9000/", "http://api.localhost/",
			"http://[::ffff:127.0.0.1]/", "http://0.0.0.0/", "http://100.64.0.1/", "http://[fe80::1]/",
		} {
			if _, err := strict.Create(t.Context(), "org_a", u, []string{AllEvents}); !errors.Is(err, ErrForbiddenTarget) {
				t.Errorf("%s: %v", u, err)
			}
		}
		if _, err := strict.Create(t.Context(), "org_a", "https://hooks.example.com/assist", []string{AllEvents}); err != nil {
			t.Errorf("public host: %v", err)
		}
	})

	t.Run("when dialling, whatever the URL said", func(t *testing.T) {
		rc := newReceiver(t, ok)
		ep := createEndpoint(t, permissive, "org_b", rc, AllEvents) // registered while allowed
		startDeliverer(t, strict)
		publish(t, strict, Event{ID: "evt_ssrf", OrgID: "org_b", Type: TypeSessionEnded})
		eventually(t, "the delivery to fail", allInState(t, strict, "org_b", ep.ID, 1, StateFailed))
		d := deliveriesOf(t, strict, "org_b", ep.ID)[0]
		if d.Attempts != 1 || !strings.Contains(d.LastError, "not allowed") || len(rc.requests()) != 0 {
			t.Fatalf("delivery: %+v, receiver got %d requests", d, len(rc.requests()))
		}
	})
}

func TestCreateChecksItsInput(t *testing.T) {
	_, w := setup(t, testConfig())
	cases := []struct {
		name   string
		org    string
		url    string
		events []string
		want   error
	}{
		{"another scheme", "org_a", "ftp://example.com/x", []string{AllEvents}, ErrInvalidURL},
		{"credentials in the URL", "org_a", "https://user:pw@example.com/x", []string{AllEvents}, ErrInvalidURL},
		{"no host", "org_a", "https:///x", []string{AllEvents}, ErrInvalidURL},
		{"empty", "org_a", "", []string{AllEvents}, ErrInvalidURL},
		{"too long", "org_a", "https://example.com/" + strings.Repeat("a", maxURLLength), []string{AllEvents}, ErrInvalidURL},
		{"a fragment", "org_a", "https://example.com/x#y", []string{AllEvents}, ErrInvalidURL},
		{"a bad port", "org_a", "https://example.com:99999/x", []string{AllEvents}, ErrInvalidURL},
		{"no event types", "org_a", "https://example.com/x", nil, ErrUnknownEventType},
		{"an unknown event type", "org_a", "https://example.com/x", []string{"session.exploded"}, ErrUnknownEventType},
		{"a bad organisation id", "org.a", "https://example.com/x", []string{AllEvents}, ErrInvalidID},
	}
	for _, c := range cases {
		t.Run("refuses "+c.name, func(t *testing.T) {
			if _, err := w.Create(t.Context(), c.org, c.url, c.events); !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	t.Run("keeps event types sorted and unique", func(t *testing.T) {
		ep, err := w.Create(t.Context(), "org_a", "https://example.com/x", []string{TypeSessionEnded, TypeSessionCreated, TypeSessionEnded})
		if err != nil || !slices.Equal(ep.Events, []string{TypeSessionCreated, TypeSessionEnded}) {
			t.Fatalf("%v %v", err, ep)
		}
	})
}

func TestPublishChecksTheEvent(t *testing.T) {
	_, w := setup(t, testConfig())
	for name, ev := range map[string]Event{
		"no id":             {OrgID: "org_a", Type: TypeSessionCreated},
		"an id with spaces": {ID: "evt 1", OrgID: "org_a", Type: TypeSessionCreated},
		"no organisation":   {ID: "evt_1", Type: TypeSessionCreated},
		"an unknown type":   {ID: "evt_1", OrgID: "org_a", Type: "session.exploded"},
		"data not JSON":     {ID: "evt_1", OrgID: "org_a", Type: TypeSessionCreated, Data: json.RawMessage("{nope")},
		"data too large":    {ID: "evt_1", OrgID: "org_a", Type: TypeSessionCreated, Data: json.RawMessage(`"` + strings.Repeat("x", maxDataBytes) + `"`)},
	} {
		if err := w.Publish(t.Context(), ev); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestRunEndsWhenTheConnectionCloses(t *testing.T) {
	b := openBus(t, t.TempDir())
	w := openWebhooks(t, b, testConfig())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.NewDeliverer().Run(ctx) }()
	// Run is consuming once the consumer has a pull request waiting.
	eventually(t, "the deliverer to pull", func() bool {
		c, err := b.JS.Consumer(t.Context(), streamName, consumerName)
		if err != nil {
			return false
		}
		info, err := c.Info(t.Context())
		return err == nil && info.NumWaiting > 0
	})
	b.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Run returned nil after the connection closed")
		}
	case <-time.After(waitLimit):
		t.Fatal("Run kept going after the connection closed")
	}
}
