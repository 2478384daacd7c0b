package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// node is the assist binary running as a real process.
type node struct {
	cmd     *exec.Cmd
	url     string
	welcome string // what it printed up to the end of its welcome text
	done    chan error
}

func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "assist")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

var consoleLine = regexp.MustCompile(`Console:\s+(http://\S+)/console/`)

func startNode(t *testing.T, bin, dataDir string) *node {
	t.Helper()
	n := &node{done: make(chan error, 1)}
	n.cmd = exec.Command(bin, "-addr", "127.0.0.1:0", "-data-dir", dataDir, "-shutdown-timeout", "5s")
	n.cmd.Env = append(os.Environ(), "ASSIST_BOOTSTRAP_API_KEY=ak_from_the_environment", "ASSIST_LOG_FORMAT=json")
	stdout, _ := n.cmd.StdoutPipe()
	n.cmd.Stderr = io.Discard
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.cmd.Process.Kill() })
	welcome := make(chan string, 1)
	go func() {
		var out strings.Builder
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "curl -X POST") { // the welcome text's last line
				welcome <- out.String()
			}
		}
		n.done <- n.cmd.Wait()
	}()
	select {
	case n.welcome = <-welcome:
	case <-time.After(30 * time.Second):
		t.Fatalf("assist did not print its welcome within 30s")
	}
	m := consoleLine.FindStringSubmatch(n.welcome)
	if m == nil {
		t.Fatalf("no console URL in:\n%s", n.welcome)
	}
	n.url = m[1]
	return n
}

func (n *node) interrupt(t *testing.T) {
	t.Helper()
	_ = n.cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-n.done:
		if err != nil {
			t.Fatalf("assist exited with %v after Ctrl-C", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("assist did not exit within 20s of Ctrl-C")
	}
}

func TestTheBinaryStartsServesAndStopsCleanly(t *testing.T) {
	bin := buildBinary(t)
	dataDir := t.TempDir()

	first := startNode(t, bin, dataDir)
	if !strings.Contains(first.welcome, "ak_from_the_environment") || !strings.Contains(first.welcome, "Password:") {
		t.Fatalf("first start did not print the bootstrap credentials:\n%s", first.welcome)
	}
	resp, err := http.Get(first.url + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", err, resp)
	}
	req, _ := http.NewRequestWithContext(context.Background(), "POST", first.url+"/v1/sessions", nil)
	req.Header.Set("Authorization", "Bearer ak_from_the_environment")
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("create session: %v %v", err, resp)
	}
	var created struct{ ID string }
	_ = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	first.interrupt(t)

	t.Run("a restart keeps the data and does not bootstrap again", func(t *testing.T) {
		second := startNode(t, bin, dataDir)
		defer second.interrupt(t)
		if strings.Contains(second.welcome, "Password:") {
			t.Errorf("second start printed new credentials:\n%s", second.welcome)
		}
		req, _ := http.NewRequest("GET", second.url+"/v1/sessions/"+created.ID, nil)
		req.Header.Set("Authorization", "Bearer ak_from_the_environment")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("session after restart: %v %v", err, resp)
		}
		resp.Body.Close()
	})
}

func TestHelpDocumentsTheSettings(t *testing.T) {
	var out strings.Builder
	err := run([]string{"-help"}, func(string) string { return "" }, &out, &out)
	if err == nil || !strings.Contains(out.String(), "ASSIST_NATS_URL") || !strings.Contains(out.String(), "ASSIST_BOOTSTRAP_API_KEY") {
		t.Fatalf("help: %v\n%s", err, out.String())
	}
}

func TestBadSettingsFailAtStart(t *testing.T) {
	var out strings.Builder
	err := run([]string{"-addr", "nowhere"}, func(string) string { return "" }, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "addr") {
		t.Fatalf("err = %v", err)
	}
}
