package signaling

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/assist-video/assist/signaling/config"
)

// The waiting room at scale needs the customers' ends of the sockets in another process: one
// process cannot hold both ends of 10 000 connections under the usual hard limit of open
// files, and the node's memory must be the node's alone. The other process is this test
// binary again, started with waitingClientsEnv set, running TestWaitingClientsHelperProcess;
// the two talk over the child's stdin and stdout, one line per message:
//
//	child:  parked                      every customer knows their place in the full line
//	parent: next                        the parent is about to admit the head of the line
//	child:  first <index> <participant> the head of the line (index into the token file)
//	child:  done <unix-ns>              every other customer has seen the shorter line
//	child:  fail <reason>               something went wrong; the child exits
//
// A closed stdin ends the child.

// waitingClientsEnv holds "<signal URL> <token file>" for the child process.
const waitingClientsEnv = "ASSIST_TEST_WAITING_CLIENTS"

// waitingProtocolPrefix marks the child's protocol lines among whatever else the test binary
// prints.
const waitingProtocolPrefix = "waiting-clients: "

// TestWaitingClientsHelperProcess is not a test of its own: it is the customers' side of
// parkWaitingLineElsewhere, and returns at once when run any other way.
func TestWaitingClientsHelperProcess(t *testing.T) {
	spec := os.Getenv(waitingClientsEnv)
	if spec == "" {
		return
	}
	if err := runWaitingClients(spec, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintf(os.Stdout, "%sfail %v\n", waitingProtocolPrefix, err)
		os.Exit(1)
	}
	os.Exit(0)
}

func runWaitingClients(spec string, in io.Reader, out io.Writer) error {
	signalURL, tokenFile, ok := strings.Cut(spec, " ")
	if !ok {
		return fmt.Errorf("%s: want \"<url> <token file>\", got %q", waitingClientsEnv, spec)
	}
	data, err := os.ReadFile(tokenFile)
	if err != nil {
		return err
	}
	tokens := strings.Fields(string(data))
	n := len(tokens)
	if _, err := raiseFileLimitFor(n, 1); err != nil {
		return err
	}
	say := func(format string, args ...any) { fmt.Fprintf(out, waitingProtocolPrefix+format+"\n", args...) }

	line := &waitingLine{customers: make([]*parkedCustomer, n), done: make(chan time.Time, 1)}
	defer func() {
		for _, c := range line.customers {
			if c != nil {
				_ = c.conn.Close()
			}
		}
	}()
	line.startRound(int64(n), int64(n))
	dialer := websocket.Dialer{ReadBufferSize: 512, WriteBufferSize: 512, HandshakeTimeout: 30 * time.Second}
	var wg sync.WaitGroup
	var failed atomic.Value
	var retries atomic.Int64
	work := make(chan int)
	for range 16 { // joins at once: more only queue up in JetStream on a small machine
		wg.Go(func() {
			for i := range work {
				// A node too busy to join someone in time says so ("cannot join now",
				// "join within 10s"), as a browser would hear it; like the customer page,
				// try again a little later (and count it).
				err := line.join(&dialer, signalURL, i, tokens[i], "")
				for try := 1; err != nil && try <= 5; try++ {
					retries.Add(1)
					time.Sleep(time.Duration(try) * time.Second)
					err = line.join(&dialer, signalURL, i, tokens[i], "")
				}
				if err != nil {
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
		return fmt.Errorf("parking customers: %w", err)
	}
	if err := line.await(5 * time.Minute); err != nil {
		return fmt.Errorf("every customer knows their place in the full line: %w", err)
	}
	say("parked %d", retries.Load())

	commands := bufio.NewScanner(in)
	for commands.Scan() {
		if commands.Text() != "next" {
			return fmt.Errorf("unknown command %q", commands.Text())
		}
		before := map[*parkedCustomer]int{}
		first, length := -1, 0
		for i, c := range line.customers {
			pos, n := c.place()
			if pos == 0 {
				continue // admitted in an earlier round
			}
			before[c], length = pos, n
			if pos == 1 {
				first = i
			}
		}
		if first < 0 {
			return fmt.Errorf("nobody is first in line")
		}
		head := line.customers[first]
		head.state.Store(0)
		delete(before, head)
		line.startRound(int64(length-1), int64(length-1))
		say("first %d %s", first, head.id)
		if err := line.await(time.Minute); err != nil {
			return fmt.Errorf("everyone learns their new place: %w", err)
		}
		at := <-line.done
		for c, was := range before {
			if pos, n := c.place(); pos != was-1 || n != length-1 {
				return fmt.Errorf("a customer who was %d of %d is at %d of %d", was, length, pos, n)
			}
		}
		say("done %d", at.UnixNano())
	}
	return commands.Err()
}

// await waits until the round is complete and leaves its time on l.done for the caller.
func (l *waitingLine) await(within time.Duration) error {
	select {
	case at := <-l.done:
		l.done <- at
		return nil
	case <-time.After(within):
		return fmt.Errorf("only %d of %d within %v", l.reached.Load(), l.expect.Load(), within)
	}
}

// remoteWaitingLine is a node in this process whose waiting customers are in a child process.
type remoteWaitingLine struct {
	ts       *testServer
	orgID    string
	sessions []string // by customer index
	child    *exec.Cmd
	commands io.WriteCloser
	replies  chan string
}

// parkWaitingLineElsewhere starts a node and parks n waiting customers on it from a child
// process, each in their own session, and waits until every one of them knows their place in
// the line of n.
func parkWaitingLineElsewhere(tb testing.TB, n int) *remoteWaitingLine {
	tb.Helper()
	cfg := config.Defaults()
	cfg.Addr, cfg.DataDir, cfg.NodeID = "127.0.0.1:0", tb.TempDir(), "bench"
	cfg.BootstrapAPIKey, cfg.BootstrapPassword = testAPIKey, testPassword
	cfg.ShutdownTimeout = 30 * time.Second
	cfg.MaxSocketsPerIP = n + 100
	cfg.IPRate, cfg.IPBurst = 1_000_000, 1_000_000
	cfg.QueueTimeout = 0
	ts := startServerTB(tb, cfg)
	line := &remoteWaitingLine{ts: ts, orgID: ts.Bootstrap().OrganizationID, sessions: make([]string, n), replies: make(chan string, 4)}

	tokens := make([]string, n)
	var wg sync.WaitGroup
	var failed atomic.Value
	work := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range work {
				id, tok, err := waitingSession(context.Background(), ts, line.orgID)
				if err != nil {
					failed.CompareAndSwap(nil, err)
					continue
				}
				line.sessions[i], tokens[i] = id, tok
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		tb.Fatalf("creating sessions: %v", err)
	}
	tokenFile := filepath.Join(tb.TempDir(), "tokens")
	if err := os.WriteFile(tokenFile, []byte(strings.Join(tokens, "\n")), 0o600); err != nil {
		tb.Fatal(err)
	}

	signalURL := "ws" + strings.TrimPrefix(ts.URL, "http") + "/v1/signal"
	line.child = exec.Command(os.Args[0], "-test.run=^TestWaitingClientsHelperProcess$", "-test.count=1")
	line.child.Env = append(os.Environ(), waitingClientsEnv+"="+signalURL+" "+tokenFile)
	line.child.Stderr = os.Stderr
	stdout, err := line.child.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if line.commands, err = line.child.StdinPipe(); err != nil {
		tb.Fatal(err)
	}
	if err := line.child.Start(); err != nil {
		tb.Fatalf("start the customers' process: %v", err)
	}
	go func() {
		defer close(line.replies)
		lines := bufio.NewScanner(stdout)
		for lines.Scan() {
			if reply, ok := strings.CutPrefix(lines.Text(), waitingProtocolPrefix); ok {
				line.replies <- reply
			}
		}
	}()
	tb.Cleanup(func() {
		_ = line.commands.Close() // the child hangs up and exits
		exited := make(chan error, 1)
		go func() { exited <- line.child.Wait() }()
		select {
		case err := <-exited:
			if err != nil {
				tb.Errorf("the customers' process: %v", err)
			}
		case <-time.After(time.Minute):
			_ = line.child.Process.Kill()
			tb.Error("the customers' process did not exit within a minute")
		}
	})
	var retried int
	if reply := line.reply(tb, 30*time.Minute); !strings.HasPrefix(reply, "parked ") {
		tb.Fatalf("the customers' process: %s", reply)
	} else if retried, _ = strconv.Atoi(strings.TrimPrefix(reply, "parked ")); retried > 0 {
		tb.Logf("%d joins failed and were tried again (see the node's errors above)", retried)
	}
	return line
}

// reply is the child's next message.
func (l *remoteWaitingLine) reply(tb testing.TB, within time.Duration) string {
	tb.Helper()
	select {
	case r, ok := <-l.replies:
		if !ok {
			tb.Fatal("the customers' process ended")
		}
		return r
	case <-time.After(within):
		tb.Fatalf("no word from the customers' process within %v", within)
		return ""
	}
}

// admitFirst admits the customer at the head of the line and returns how long it took until
// every other waiting customer had their new place (checked by the child).
func (l *remoteWaitingLine) admitFirst(tb testing.TB) time.Duration {
	tb.Helper()
	// One change on a quiet line: the view publishes a change at once unless it published
	// one less than queueRecomputeEvery ago (a burst), which the previous round may have.
	time.Sleep(queueRecomputeEvery)
	if _, err := io.WriteString(l.commands, "next\n"); err != nil {
		tb.Fatal(err)
	}
	var index int
	var participant string
	reply := l.reply(tb, time.Minute)
	if _, err := fmt.Sscanf(reply, "first %d %s", &index, &participant); err != nil || index < 0 || index >= len(l.sessions) {
		tb.Fatalf("the customers' process: %s", reply)
	}
	started := time.Now()
	if _, err := l.ts.rooms.Admit(context.Background(), l.orgID, l.sessions[index], participant, "par_bench"); err != nil {
		tb.Fatal(err)
	}
	reply = l.reply(tb, 2*time.Minute)
	ns, ok := strings.CutPrefix(reply, "done ")
	at, err := strconv.ParseInt(ns, 10, 64)
	if !ok || err != nil {
		tb.Fatalf("the customers' process: %s", reply)
	}
	return time.Unix(0, at).Sub(started)
}

// residentBytes is this process's resident memory (VmRSS).
func residentBytes(tb testing.TB) uint64 {
	tb.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Fatalf("resident memory: %v", err)
	}
	for l := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	tb.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// establishedTo counts the established TCP connections whose local end is the node's port:
// the sockets the node holds.
func establishedTo(tb testing.TB, nodeURL string) int {
	tb.Helper()
	u, err := url.Parse(nodeURL)
	if err != nil {
		tb.Fatal(err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		tb.Fatal(err)
	}
	want := fmt.Sprintf(":%04X", port)
	n := 0
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for l := range strings.SplitSeq(string(data), "\n") {
			f := strings.Fields(l)
			if len(f) > 3 && strings.HasSuffix(f[1], want) && f[3] == "01" { // 01: ESTABLISHED
				n++
			}
		}
	}
	return n
}

// TestAWaitingLineInAnotherProcessKnowsEveryPlace runs the benchmark's machinery small: a
// node, 50 waiting customers in a child process, two admissions that reach all the others.
func TestAWaitingLineInAnotherProcessKnowsEveryPlace(t *testing.T) {
	const n = 50
	line := parkWaitingLineElsewhere(t, n)
	if open := establishedTo(t, line.ts.URL); open < n {
		t.Fatalf("the node holds %d sockets, want %d", open, n)
	}
	for range 2 {
		took := line.admitFirst(t)
		t.Logf("an admission reached the other waiting customers in %v", took)
	}
}
