package recording

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/assist-video/assist/recording/store"
	"github.com/assist-video/assist/recording/store/storetest"
)

func TestRecoverAfterACrash(t *testing.T) {
	ctx := testContext(t)
	st := newStore(t, ctx, storetest.StartEmbedded(t))
	c := startCall(t, ctx, testSession, "alice", "bob")
	spool := t.TempDir()

	// The first server records and dies: no Stop, no manifest, and uploads cut short.
	m := New(Config{SpoolDir: spool, Store: st, SegmentDuration: 2 * time.Second, Logger: testLogger(t)})
	id, err := m.Start(ctx, testOrg, testSession, c.room)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	record(t, ctx, 7*time.Second)
	m.abandon()

	dir := filepath.Join(spool, testOrg, testSession, id)
	finished, _ := filepath.Glob(filepath.Join(dir, "*.webm"))
	parts, _ := filepath.Glob(filepath.Join(dir, "*.part"))
	t.Logf("left after the crash: %d finished segments %v, %d unfinished %v", len(finished), finished, len(parts), parts)
	if len(finished) < 4 {
		t.Fatalf("%d finished segments after 7 s at 2 s per segment for two people, want at least 4", len(finished))
	}

	// The next server recovers them.
	m2 := New(Config{SpoolDir: spool, Store: st, Logger: testLogger(t)})
	mans, err := m2.Recover(ctx, spool)
	if err != nil {
		t.Fatalf("Recover: %v", err)
	}
	if len(mans) != 1 || mans[0].RecordingID != id || mans[0].State != StateInterrupted {
		t.Fatalf("Recover returned %+v, want one interrupted manifest of %s", mans, id)
	}
	runManager(t, m2)
	waitFor(t, ctx, "uploads", func() bool { return m2.Backlog() == 0 })

	man := downloadManifest(t, ctx, st, testOrg, testSession, id)
	if man.State != StateInterrupted {
		t.Errorf("stored manifest state %q, want %q", man.State, StateInterrupted)
	}
	// Every segment finished before the crash is in the manifest and in storage, playable.
	var names []string
	for _, s := range man.Segments {
		names = append(names, filepath.Base(s.Key))
	}
	for _, f := range finished {
		p, seq, ext, _ := parseSegmentFileName(filepath.Base(f))
		if want := objectName(id, p, seq, ext); !slices.Contains(names, want) {
			t.Errorf("segment %s finished before the crash is not in the manifest %v", want, names)
		}
	}
	total := checkSegments(t, ctx, st, man, nil)
	for _, p := range []string{"alice", "bob"} {
		// All but the segment being written at the crash: at least 7 s - 2 s - the start.
		if total[p] < 4*time.Second {
			t.Errorf("%s: %v recovered of 7 s", p, total[p])
		}
	}
	objs, err := st.List(ctx, mustPrefix(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != len(man.Segments)+1 {
		t.Errorf("%d objects stored, want %d segments and the manifest", len(objs), len(man.Segments))
	}
	assertSpoolEmpty(t, spool)
}

func TestStorageOutageLosesNothing(t *testing.T) {
	ctx := testContext(t)
	minio := storetest.NewMinIO(t)
	st := newStore(t, ctx, minio.Config())
	c := startCall(t, ctx, testSession, "alice", "bob")
	spool := t.TempDir()
	m := New(Config{SpoolDir: spool, Store: st, SegmentDuration: time.Second, Logger: testLogger(t)})
	runManager(t, m)

	id, err := m.Start(ctx, testOrg, testSession, c.room)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	record(t, ctx, 2*time.Second)
	minio.Stop()
	waitFor(t, ctx, "segments to pile up while storage is down", func() bool { return m.Backlog() >= 4 })
	t.Logf("backlog with storage down: %d", m.Backlog())
	minio.Start()
	record(t, ctx, time.Second)
	man, err := m.Stop(ctx, id)
	if err != nil {
		t.Fatalf("Stop: %v", err)
	}
	waitFor(t, ctx, "uploads after storage came back", func() bool { return m.Backlog() == 0 })

	// Every segment is stored, numbered without a gap.
	seqs := make(map[string][]int)
	for _, s := range man.Segments {
		seqs[s.Participant] = append(seqs[s.Participant], s.Seq)
		if _, err := st.Stat(ctx, s.Key); err != nil {
			t.Errorf("segment %s: %v", s.Key, err)
		}
	}
	for _, p := range []string{"alice", "bob"} {
		got := seqs[p]
		slices.Sort(got)
		if len(got) < 4 {
			t.Errorf("%s: %d segments, want at least 4", p, len(got))
		}
		for i, s := range got {
			if s != i+1 {
				t.Errorf("%s: segments %v have a gap", p, got)
				break
			}
		}
	}
	stored := downloadManifest(t, ctx, st, testOrg, testSession, id)
	if len(stored.Segments) != len(man.Segments) {
		t.Errorf("stored manifest has %d segments, want %d", len(stored.Segments), len(man.Segments))
	}
	checkSegments(t, ctx, st, man, nil)
	assertSpoolEmpty(t, spool)
}

func mustPrefix(t *testing.T) string {
	t.Helper()
	p, err := store.SessionPrefix(testOrg, testSession)
	if err != nil {
		t.Fatal(err)
	}
	return p + store.KindRecordings + "/"
}

// TestStopDoesNotWaitForTheDisk: syncing segments can take seconds on a busy disk (it did
// under -race with a browser's camera); Stop returns at once all the same, and the tail of
// the recording still arrives, before the manifest.
func TestStopDoesNotWaitForTheDisk(t *testing.T) {
	ctx := testContext(t)
	st := newStore(t, ctx, storetest.StartEmbedded(t))
	c := startCall(t, ctx, testSession, "alice", "bob")
	spool := t.TempDir()
	m := New(Config{SpoolDir: spool, Store: st, SegmentDuration: 2 * time.Second, Logger: testLogger(t)})
	m.slowDisk = func() { time.Sleep(time.Second) }
	runManager(t, m)

	produced := listen(t, c.room, "alice", "bob")
	id, err := m.Start(ctx, testOrg, testSession, c.room)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	started := time.Now()
	record(t, ctx, 3*time.Second)
	began := time.Now()
	man, err := m.Stop(ctx, id)
	took := time.Since(began)
	recorded := time.Since(started)
	if err != nil {
		t.Fatalf("Stop: %v", err)
	}
	mediaTime := produced()
	if took > time.Second {
		t.Errorf("Stop took %v with a slow disk, want well under a second", took)
	}
	t.Logf("Stop took %v; backlog %d", took, m.Backlog())
	if m.Backlog() == 0 {
		t.Error("Backlog is 0 while segments are still being synced")
	}
	waitFor(t, ctx, "uploads", func() bool { return m.Backlog() == 0 })

	stored := downloadManifest(t, ctx, st, testOrg, testSession, id)
	if stored.State != StateComplete || len(stored.Segments) != len(man.Segments) {
		t.Errorf("stored manifest: state %q with %d segments, want %q with %d", stored.State, len(stored.Segments), StateComplete, len(man.Segments))
	}
	total := checkSegments(t, ctx, st, man, nil)
	for _, p := range []string{"alice", "bob"} {
		// The tail is there: everything the camera produced but the wait for the first keyframe.
		checkCoverage(t, man, p, total[p], mediaTime[p], recorded)
	}
	assertSpoolEmpty(t, spool)
}
