package signaling

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/assist-video/assist/signaling/auth"
	"github.com/assist-video/assist/signaling/config"
	"github.com/assist-video/assist/signaling/wire"
)

// The waiting room must be cheap: a parked customer holds one WebSocket and nothing on the
// SFU. These park many waiting customers on one node, each in a session of their own (as ad
// hoc calls are), then admit one and time how long the new places take to reach everyone.

// parkedCustomer is one waiting customer's socket, read by its own goroutine.
type parkedCustomer struct {
	conn      *websocket.Conn
	id        string
	sessionID string
	state     atomic.Int64 // position<<32 | queue length, from the latest waiting message
	round     atomic.Int64 // the last round this customer counted in
}

func (c *parkedCustomer) place() (position, length int) {
	s := c.state.Load()
	return int(s >> 32), int(s & 0xffffffff)
}

// waitingLine is a node with customers parked in its waiting room.
type waitingLine struct {
	ts        *testServer
	orgID     string
	customers []*parkedCustomer

	// A round waits for every customer counted in it to see a line of length target.
	mu      sync.Mutex
	roundNo atomic.Int64
	target  atomic.Int64
	reached atomic.Int64
	expect  atomic.Int64
	done    chan time.Time
}

// raiseFileLimit lets the process hold n sockets at both ends, or says how many it can.
func raiseFileLimit(n int) (int, error) { return raiseFileLimitFor(n, 2) }

// raiseFileLimitFor lets the process hold n connections with ends of them in this process
// (2: client and server; 1: one of the two), or says how many it can.
func raiseFileLimitFor(n, ends int) (int, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	need := uint64(ends*n + 1500)
	if lim.Cur < need {
		want := syscall.Rlimit{Cur: need, Max: max(lim.Max, need)}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
			want = syscall.Rlimit{Cur: lim.Max, Max: lim.Max}
			_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want)
		}
		_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	if lim.Cur < need {
		return int((lim.Cur - 1500) / uint64(ends)), fmt.Errorf("the open file limit is %d, %d sockets need %d: raise ulimit -n", lim.Cur, n, need)
	}
	return n, nil
}

// parkWaitingLine starts a node and parks n waiting customers, each in their own session,
// and waits until every one of them knows their place in the line of n.
func parkWaitingLine(tb testing.TB, n int) *waitingLine {
	tb.Helper()
	cfg := config.Defaults()
	cfg.Addr, cfg.DataDir, cfg.NodeID = "127.0.0.1:0", tb.TempDir(), "bench"
	cfg.BootstrapAPIKey, cfg.BootstrapPassword = testAPIKey, testPassword
	cfg.ShutdownTimeout = 30 * time.Second
	cfg.MaxSocketsPerIP = n + 100
	cfg.IPRate, cfg.IPBurst = 1_000_000, 1_000_000
	cfg.QueueTimeout = 0
	ts := startServerTB(tb, cfg)
	line := &waitingLine{ts: ts, orgID: ts.Bootstrap().OrganizationID, customers: make([]*parkedCustomer, n), done: make(chan time.Time, 1)}
	line.startRound(int64(n), int64(n))

	url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/v1/signal"
	dialer := websocket.Dialer{ReadBufferSize: 512, WriteBufferSize: 512, HandshakeTimeout: 30 * time.Second}
	ctx := context.Background()
	var wg sync.WaitGroup
	var failed atomic.Value
	work := make(chan int)
	for range 64 {
		wg.Go(func() {
			for i := range work {
				if err := line.park(ctx, &dialer, url, i); err != nil {
					failed.CompareAndSwap(nil, err)
				}
			}
		})
	}
	for i := range n {
		if failed.Load() != nil {
			break
		}
		work <- i
	}
	close(work)
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		tb.Fatalf("parking customers: %v", err)
	}
	tb.Cleanup(func() {
		for _, c := range line.customers {
			if c != nil {
				_ = c.conn.Close()
			}
		}
	})
	line.wait(tb, "every customer knows their place in the full line", 5*time.Minute)
	return line
}

// startServerTB starts a node for a test or a benchmark, as startTestServer does.
func startServerTB(tb testing.TB, cfg config.Config) *testServer {
	tb.Helper()
	if err := cfg.Validate(); err != nil {
		tb.Fatal(err)
	}
	// Errors only, and to stderr: a benchmark that fails should say why.
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := NewServer(ctx, cfg, log)
	if err != nil {
		cancel()
		tb.Fatalf("NewServer: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("Run: %v", err)
			}
		case <-time.After(2 * time.Minute):
			tb.Error("server did not shut down within 2m")
		}
	})
	return &testServer{Server: srv, URL: srv.URL(), APIKey: testAPIKey}
}

func (l *waitingLine) park(ctx context.Context, dialer *websocket.Dialer, url string, i int) error {
	sessionID, tok, err := waitingSession(ctx, l.ts, l.orgID)
	if err != nil {
		return err
	}
	return l.join(dialer, url, i, tok, sessionID)
}

// waitingSession creates an ad hoc session and a customer link token for it.
func waitingSession(ctx context.Context, ts *testServer, orgID string) (sessionID, token string, err error) {
	sess, err := ts.rooms.CreateSession(ctx, orgID)
	if err != nil {
		return "", "", err
	}
	tok, _, err := ts.issuer.IssueLink(orgID, sess.ID, auth.RoleCustomer, time.Hour)
	if err != nil {
		return "", "", err
	}
	return sess.ID, tok, nil
}

// join opens customer i's socket, joins with tok and follows the socket from then on.
func (l *waitingLine) join(dialer *websocket.Dialer, url string, i int, tok, sessionID string) error {
	conn, _, err := dialer.Dial(url, nil)
	if err != nil {
		return fmt.Errorf("dial %d: %w", i, err)
	}
	raw, _ := json.Marshal(wire.Join{Token: tok, Name: "Customer " + strconv.Itoa(i)})
	if err := conn.WriteJSON(wire.Envelope{Type: wire.TypeJoin, Payload: raw}); err != nil {
		_ = conn.Close()
		return err
	}
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	var env wire.Envelope
	if err := conn.ReadJSON(&env); err != nil || env.Type != wire.TypeWelcome {
		_ = conn.Close()
		return fmt.Errorf("join %d: %v %s", i, err, env.Payload)
	}
	var welcome wire.Welcome
	_ = json.Unmarshal(env.Payload, &welcome)
	_ = conn.SetReadDeadline(time.Time{})
	c := &parkedCustomer{conn: conn, id: welcome.ParticipantID, sessionID: sessionID}
	l.mu.Lock()
	l.customers[i] = c
	l.mu.Unlock()
	go l.read(c)
	return nil
}

// read follows one customer's socket and counts them in the round when they see its line.
func (l *waitingLine) read(c *parkedCustomer) {
	for {
		_, frame, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		var env wire.Envelope
		if json.Unmarshal(frame, &env) != nil || env.Type != wire.TypeWaiting {
			continue
		}
		var w wire.Waiting
		if json.Unmarshal(env.Payload, &w) != nil {
			continue
		}
		c.state.Store(int64(w.Position)<<32 | int64(w.QueueLength))
		// The target first: startRound moves the round on before the target.
		if int64(w.QueueLength) != l.target.Load() {
			continue
		}
		if round := l.roundNo.Load(); c.round.Swap(round) != round {
			if l.reached.Add(1) == l.expect.Load() {
				select {
				case l.done <- time.Now():
				default:
				}
			}
		}
	}
}

// startRound expects count customers to see a line of length target.
func (l *waitingLine) startRound(target, count int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.done:
	default:
	}
	l.roundNo.Add(1)
	l.expect.Store(count)
	l.reached.Store(0)
	l.target.Store(target)
	// Customers who already see the target count at once.
	for _, c := range l.customers {
		if c == nil {
			continue
		}
		if _, length := c.place(); int64(length) == target && c.round.Swap(l.roundNo.Load()) != l.roundNo.Load() {
			if l.reached.Add(1) == l.expect.Load() {
				l.done <- time.Now()
			}
		}
	}
}

func (l *waitingLine) wait(tb testing.TB, what string, within time.Duration) time.Time {
	tb.Helper()
	select {
	case at := <-l.done:
		return at
	case <-time.After(within):
		tb.Fatalf("%s: only %d of %d within %v", what, l.reached.Load(), l.expect.Load(), within)
		return time.Time{}
	}
}

// admitFirst admits the customer at the head of the line and waits until everyone else has
// their new place; it returns how long that took and the places before.
func (l *waitingLine) admitFirst(tb testing.TB) (time.Duration, map[*parkedCustomer]int) {
	tb.Helper()
	before := map[*parkedCustomer]int{}
	var first *parkedCustomer
	length := 0
	for _, c := range l.customers {
		pos, n := c.place()
		if pos == 0 {
			continue // admitted in an earlier round
		}
		before[c], length = pos, n
		if pos == 1 {
			first = c
		}
	}
	if first == nil {
		tb.Fatal("nobody is first in line")
	}
	// One change on a quiet line: the view publishes a change at once unless it published
	// one less than queueRecomputeEvery ago (a burst), which the previous round may have.
	time.Sleep(queueRecomputeEvery)
	first.state.Store(0)
	l.startRound(int64(length-1), int64(length-1))
	started := time.Now()
	if _, err := l.ts.rooms.Admit(context.Background(), l.orgID, first.sessionID, first.id, "par_bench"); err != nil {
		tb.Fatal(err)
	}
	done := l.wait(tb, "everyone learns their new place", time.Minute)
	delete(before, first)
	return done.Sub(started), before
}

func heapAndStacks() (heap, stacks uint64) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc, m.StackInuse
}

func TestWaitingLineOf200KnowsEveryPlaceAfterAnAdmission(t *testing.T) {
	const n = 200
	if _, err := raiseFileLimit(n); err != nil {
		t.Fatal(err)
	}
	line := parkWaitingLine(t, n)
	seen := map[int]bool{}
	for _, c := range line.customers {
		pos, length := c.place()
		if length != n || pos < 1 || pos > n || seen[pos] {
			t.Fatalf("a customer is at %d of %d (places seen %d)", pos, length, len(seen))
		}
		seen[pos] = true
	}
	took, before := line.admitFirst(t)
	for c, was := range before {
		if pos, length := c.place(); pos != was-1 || length != n-1 {
			t.Fatalf("a customer who was %d is at %d of %d, want %d of %d", was, pos, length, was-1, n-1)
		}
	}
	t.Logf("an admission reached %d waiting customers in %v", n-1, took)
}

// BenchmarkWaitingRoom parks ASSIST_BENCH_WAITING (default 10000) customers on one node and
// reports what each one costs the node and how long one admission takes to reach every other
// waiting customer. The customers' ends of the sockets live in a child process (this test
// binary again, see waitingClients), so the node process holds all n sockets, as a real node
// does, and its memory is the node's alone:
//
//	go test -run '^$' -bench BenchmarkWaitingRoom -benchtime 1x -timeout 45m ./signaling/
//
// heap-B/waiting and stack-B/waiting are the Go heap and goroutine stacks after parking minus
// before creating the sessions, per customer (a GC first, so live memory only); rss-B/waiting
// is the same for the process's resident memory (VmRSS: Go's heap with its slack, runtime
// and C memory, but not the kernel's socket buffers); fanout-ms is from the admission to the
// last waiting customer's socket receiving its new place.
func BenchmarkWaitingRoom(b *testing.B) {
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("ASSIST_BENCH_WAITING")); err == nil && v > 1 {
		n = v
	}
	if _, err := raiseFileLimitFor(n, 1); err != nil {
		b.Fatal(err)
	}
	heap0, stacks0 := heapAndStacks()
	rss0 := residentBytes(b)
	goroutines0 := runtime.NumGoroutine()
	started := time.Now()
	line := parkWaitingLineElsewhere(b, n)
	parked := time.Since(started)
	heap1, stacks1 := heapAndStacks()
	rss1 := residentBytes(b)
	goroutines1 := runtime.NumGoroutine()
	if open := establishedTo(b, line.ts.URL); open < n {
		b.Fatalf("the node holds %d sockets, want %d", open, n)
	}
	b.ResetTimer()
	rounds := min(max(b.N, 5), n-1) // a few admissions, whatever b.N: parking is the slow part
	var worst, total time.Duration
	for range rounds {
		took := line.admitFirst(b)
		total += took
		worst = max(worst, took)
	}
	b.StopTimer()
	b.ReportMetric(float64(int64(heap1)-int64(heap0))/float64(n), "heap-B/waiting")
	b.ReportMetric(float64(int64(stacks1)-int64(stacks0))/float64(n), "stack-B/waiting")
	b.ReportMetric(float64(int64(rss1)-int64(rss0))/float64(n), "rss-B/waiting")
	b.ReportMetric(float64(goroutines1-goroutines0)/float64(n), "goroutines/waiting")
	b.ReportMetric(parked.Seconds(), "park-s")
	b.ReportMetric(float64(n), "waiting")
	b.ReportMetric(float64(total.Microseconds())/1000/float64(rounds), "fanout-ms")
	b.ReportMetric(float64(worst.Milliseconds()), "worst-fanout-ms")
}
