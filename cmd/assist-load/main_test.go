package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

const testAPIKey = "ak_load_test_key"

var consoleLine = regexp.MustCompile(`Console:\s+(http://\S+)/console/`)

// startNode builds the real assist binary and runs it as its own process on 127.0.0.1:0,
// returning its base URL and process ID once it has printed its welcome.
func startNode(t *testing.T) (string, int) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "assist")
	if out, err := exec.Command("go", "build", "-o", bin, "../assist").CombinedOutput(); err != nil {
		t.Fatalf("go build ../assist: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-data-dir", t.TempDir(), "-shutdown-timeout", "5s")
	cmd.Env = append(os.Environ(), "ASSIST_BOOTSTRAP_API_KEY="+testAPIKey, "ASSIST_LOG_LEVEL=error")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	url := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := consoleLine.FindStringSubmatch(sc.Text()); m != nil {
				url <- m[1]
			}
		}
	}()
	select {
	case u := <-url:
		return u, cmd.Process.Pid
	case <-time.After(30 * time.Second):
		t.Fatal("assist did not print its console URL within 30s")
		return "", 0
	}
}

func TestOneSessionWithThreeSubscribersAgainstTheRealBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the assist binary")
	}
	url, pid := startNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	rep, err := run(ctx, Config{URL: url, APIKey: testAPIKey, Sessions: 1, Subscribers: 3, Duration: 5 * time.Second, Warmup: time.Second, PID: pid})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	rep.Print(&out)
	t.Logf("report:\n%s", out.String())

	if rep.Joined != 3 || len(rep.Failures) != 0 {
		t.Fatalf("joined %d of 3, failures %v", rep.Joined, rep.Failures)
	}
	if rep.ForwardedPackets == 0 || rep.ForwardedBytes == 0 {
		t.Errorf("the node forwarded nothing in the window: %d packets, %d bytes", rep.ForwardedPackets, rep.ForwardedBytes)
	}
	if rep.ReceivedPackets == 0 {
		t.Error("the subscribers received nothing in the window")
	}
	if len(rep.SubscriberVideo) != 3 {
		t.Fatalf("video counts for %d subscribers, want 3", len(rep.SubscriberVideo))
	}
	for i, n := range rep.SubscriberVideo {
		if n == 0 {
			t.Errorf("subscriber %d received no video", i)
		}
	}
	if len(rep.JoinLatencies) != 3 || rep.Percentile(50) <= 0 || rep.Percentile(99) < rep.Percentile(50) {
		t.Errorf("join latencies %v: p50 %s p99 %s", rep.JoinLatencies, rep.Percentile(50), rep.Percentile(99))
	}
	if rep.NodeCPU <= 0 || rep.NodeCPUPerPacket() <= 0 {
		t.Errorf("node CPU not measured: %s (%v)", rep.NodeCPU, rep.NodeCPUErr)
	}
	// The report names every figure it promises.
	for _, figure := range []string{"forwarded", "packets/s", "Mbit/s", "CPU-seconds per million forwarded packets",
		"p50", "p99", "loss estimate"} {
		if !strings.Contains(out.String(), figure) {
			t.Errorf("the report does not give %q", figure)
		}
	}
}

func TestBadFlagsAreRefusedBeforeAnythingIsContacted(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no API key", []string{"-api-key", ""}, "-api-key"},
		{"too many subscribers for one session", []string{"-api-key", "k", "-subscribers", "201"}, "-subscribers"},
		{"too many subscribers in all", []string{"-api-key", "k", "-sessions", "3", "-subscribers", "200"}, "-sessions × -subscribers"},
		{"an unknown camera", []string{"-api-key", "k", "-video", "4k"}, "-video"},
		{"a synthetic camera beyond 20 Mbit/s", []string{"-api-key", "k", "-video", "synthetic", "-video-bitrate", "50000000"}, "-video-bitrate"},
		{"a synthetic camera at 0 fps", []string{"-api-key", "k", "-video", "synthetic", "-video-fps", "0"}, "-video-fps"},
		{"too many sessions", []string{"-api-key", "k", "-sessions", "51"}, "-sessions"},
		{"an endless window", []string{"-api-key", "k", "-duration", "1h"}, "-duration"},
		{"a negative warm-up", []string{"-api-key", "k", "-warmup", "-1s"}, "-warmup"},
		{"not an HTTP URL", []string{"-api-key", "k", "-url", "ftp://x"}, "-url"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := runMain(context.Background(), c.args, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one naming %s", err, c.want)
			}
		})
	}
}

func TestPercentileIsNearestRank(t *testing.T) {
	r := &Report{}
	for i := 1; i <= 100; i++ {
		r.JoinLatencies = append(r.JoinLatencies, time.Duration(i)*time.Millisecond)
	}
	for p, want := range map[float64]time.Duration{50: 50 * time.Millisecond, 99: 99 * time.Millisecond, 100: 100 * time.Millisecond} {
		if got := r.Percentile(p); got != want {
			t.Errorf("p%.0f = %s, want %s", p, got, want)
		}
	}
}
