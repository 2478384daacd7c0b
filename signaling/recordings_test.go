package signaling

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/assist-video/assist/signaling/wire"
)

// TestRecordingACallThroughTheAPI records a call between two Go peers sending real VP8/Opus,
// stops it, and checks with ffprobe that the stored segments are playable WebM.
func TestRecordingACallThroughTheAPI(t *testing.T) {
	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Fatal("ffprobe is needed: apt-get install -y ffmpeg (.ci/run does)")
	}
	ts := newTestServer(t)
	s := ts.createSession(t)
	customer := ts.joinCall(t, linkToken(s.CustomerURL), "Ann")
	customer.expect(wire.TypeWaiting, nil)
	specialist := ts.joinCall(t, linkToken(s.SpecialistURL), "Sam")
	if err := specialist.peer.Start(); err != nil {
		t.Fatal(err)
	}
	specialist.write(wire.TypeAdmit, wire.Admit{ParticipantID: customer.id})
	customer.expect(wire.TypeAdmitted, nil)
	if err := customer.peer.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := specialist.peer.WaitReceivedFrom(ctx, customer.id, webrtc.RTPCodecTypeVideo, 10); err != nil {
		t.Fatal(err)
	}

	var rec recordingView
	if resp := ts.do(t, "POST", "/v1/sessions/"+s.ID+"/recordings", ts.APIKey, nil, &rec); resp.StatusCode != 201 || rec.ID == "" {
		t.Fatalf("start: %d %+v", resp.StatusCode, rec)
	}
	var indicator wire.Recording
	customer.expect(wire.TypeRecording, &indicator)
	if !indicator.Starting || indicator.Active {
		t.Fatalf("the customer was not told before recording started: %+v", indicator)
	}
	customer.expect(wire.TypeRecording, &indicator)
	if !indicator.Active || indicator.RecordingID != rec.ID {
		t.Fatalf("the customer was not told: %+v", indicator)
	}
	// Record for about four seconds of the customer's video, measured by what arrives.
	before := specialist.peer.ReceivedPackets(webrtc.RTPCodecTypeVideo)
	if err := specialist.peer.WaitReceived(ctx, webrtc.RTPCodecTypeVideo, before+150); err != nil {
		t.Fatal(err)
	}
	var stopped recordingView
	if resp := ts.do(t, "POST", "/v1/sessions/"+s.ID+"/recordings/"+rec.ID+"/stop", ts.APIKey, nil, &stopped); resp.StatusCode != 200 {
		t.Fatalf("stop: %d", resp.StatusCode)
	}
	customer.expect(wire.TypeRecording, &indicator)
	if indicator.Active {
		t.Fatal("the indicator stayed on")
	}

	var list struct {
		Data []recordingView `json:"data"`
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(list.Data) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the recording's manifest never reached storage")
		}
		time.Sleep(100 * time.Millisecond)
		ts.do(t, "GET", "/v1/sessions/"+s.ID+"/recordings", ts.APIKey, nil, &list)
	}
	got := list.Data[0]
	if got.ID != rec.ID || got.State != "complete" || len(got.Segments) == 0 {
		t.Fatalf("recording = %+v", got)
	}
	people := map[string]bool{}
	var total int64
	dir := t.TempDir()
	for i, seg := range got.Segments {
		people[seg.ParticipantID] = true
		total += seg.DurationMS
		resp, err := http.Get(seg.URL)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("download segment: %v %v", err, resp)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		file := filepath.Join(dir, "seg"+string(rune('a'+i))+".webm")
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0", file).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "vp8") || !strings.Contains(string(out), "opus") {
			t.Fatalf("segment %d is not a VP8+Opus WebM: %v %s", i, err, out)
		}
	}
	if !people[customer.id] || !people[specialist.id] {
		t.Fatalf("recorded %v, want both participants", people)
	}
	if total < 2000 {
		t.Fatalf("only %d ms recorded", total)
	}
}
