package signaling

import (
	"testing"
	"time"

	"github.com/assist-video/assist/webclient/browsertest"
)

// TestBrowserRecordingFromTheConsole: the specialist records from the console, both pages show
// the indicator while it runs, and the recording is stored.
func TestBrowserRecordingFromTheConsole(t *testing.T) {
	ts := newTestServer(t)
	browser := browsertest.New(t)
	s := ts.createSession(t)

	customer := customerWaits(t, browser, s.CustomerURL)
	specialist := specialistAdmits(t, browser, s.SpecialistURL)
	must(t, "video flows", browsertest.WaitFramesDecoded(specialist, 10, 30*time.Second))

	indicatorShown := `!document.querySelector('[data-testid="recording-indicator"]').hidden`
	must(t, "record", browsertest.Click(specialist, `[data-testid="record"]`))
	must(t, "the customer sees the indicator", browsertest.WaitFor(customer, indicatorShown, 10*time.Second))
	must(t, "the console sees the indicator", browsertest.WaitFor(specialist, indicatorShown, 10*time.Second))
	before, err := browsertest.FramesDecoded(specialist)
	must(t, "frames so far", err)
	must(t, "record about three seconds", browsertest.WaitFramesDecoded(specialist, before+90, 30*time.Second))
	// Stopping finishes and syncs the last files first; under the race detector with a real
	// camera's bitrate that takes several seconds.
	must(t, "stop", browsertest.Click(specialist, `[data-testid="record"]`))
	must(t, "the indicator goes", browsertest.WaitFor(customer, `document.querySelector('[data-testid="recording-indicator"]').hidden`, 60*time.Second))

	var list struct {
		Data []recordingView `json:"data"`
	}
	deadline := time.Now().Add(60 * time.Second)
	for len(list.Data) == 0 || len(list.Data[0].Segments) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no stored recording: %+v", list.Data)
		}
		time.Sleep(200 * time.Millisecond)
		ts.do(t, "GET", "/v1/sessions/"+s.ID+"/recordings", ts.APIKey, nil, &list)
	}
	if list.Data[0].State != "complete" {
		t.Fatalf("recording state = %s", list.Data[0].State)
	}
}
