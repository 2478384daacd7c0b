package recording

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/assist-video/assist/recording/store"
	"github.com/assist-video/assist/recording/store/storetest"
)

const (
	testOrg     = "org1"
	testSession = "sess1"
)

func TestRecordingACall(t *testing.T) {
	for _, tc := range []struct {
		name  string
		store func(testing.TB) store.Config
	}{
		{"into the embedded store", storetest.StartEmbedded},
		{"into MinIO", storetest.StartMinIO},
	} {
		t.Run(tc.name+" gives playable WebM segments covering the call", func(t *testing.T) {
			ctx := testContext(t)
			st := newStore(t, ctx, tc.store(t))
			c := startCall(t, ctx, testSession, "alice", "bob")
			spool := t.TempDir()
			const segment = 2 * time.Second
			m := New(Config{SpoolDir: spool, Store: st, SegmentDuration: segment, Logger: testLogger(t)})
			runManager(t, m)

			produced := listen(t, c.room, "alice", "bob")
			id, err := m.Start(ctx, testOrg, testSession, c.room)
			if err != nil {
				t.Fatalf("Start: %v", err)
			}
			const length = 6 * time.Second
			began := time.Now()
			record(t, ctx, length)
			stopping := time.Now()
			man, err := m.Stop(ctx, id)
			if err != nil {
				t.Fatalf("Stop: %v", err)
			}
			t.Logf("Stop took %v", time.Since(stopping))
			recorded := time.Since(began)
			mediaTime := produced()
			waitFor(t, ctx, "uploads", func() bool { return m.Backlog() == 0 })

			if man.State != StateComplete {
				t.Errorf("state %q, want %q", man.State, StateComplete)
			}
			stored := downloadManifest(t, ctx, st, testOrg, testSession, id)
			if stored.State != StateComplete || len(stored.Segments) != len(man.Segments) {
				t.Errorf("stored manifest: state %q with %d segments, want %q with %d", stored.State, len(stored.Segments), StateComplete, len(man.Segments))
			}
			perPerson := make(map[string]int)
			for _, s := range man.Segments {
				perPerson[s.Participant]++
			}
			total := checkSegments(t, ctx, st, man, nil)
			for _, p := range []string{"alice", "bob"} {
				// Segments are cut at the first keyframe after their length; the camera answers
				// a keyframe request within a second even on a loaded machine.
				if want := 1 + int((total[p]-segment)/(segment+time.Second)); perPerson[p] < max(want, 2) {
					t.Errorf("%s has %d segments for %v recorded at %v per segment, want at least %d", p, perPerson[p], total[p], segment, max(want, 2))
				}
			}
			for _, p := range []string{"alice", "bob"} {
				// The segments hold all the media the camera produced while recording, but for
				// the wait for the first keyframe. (The test publishers produce less media than
				// wall-clock time on a loaded machine: up to 25% less under -race on 2 cores.)
				d := total[p]
				checkCoverage(t, man, p, d, mediaTime[p], recorded)
				if d < recorded/2 {
					t.Errorf("%s: segments last %v in all, recorded for %v", p, d, recorded)
				}
			}
			assertSpoolEmpty(t, spool)
		})
	}
}

// assertSpoolEmpty checks that nothing is left behind once everything is uploaded.
func assertSpoolEmpty(t *testing.T, spool string) {
	t.Helper()
	var left []string
	filepath.Walk(spool, func(path string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			left = append(left, path)
		}
		return nil
	})
	if len(left) > 0 {
		t.Errorf("spool still holds %v", left)
	}
}
