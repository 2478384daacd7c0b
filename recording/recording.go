// Package recording records calls on the server, from the RTP the SFU forwards, without
// re-encoding: each participant's video and Opus audio go into segment files of a few seconds
// (WebM for VP8 video or for audio alone, Matroska for H.264; each starting with a keyframe,
// each complete and playable on its own), written to a local spool directory and then
// uploaded to object storage by an Uploader that outlasts storage outages. A manifest lists the segments; after a crash, Recover uploads what the
// spool holds and writes a manifest saying the recording was interrupted.
//
// Layout of the spool: {spool}/{org}/{session}/{recording}/ holds {participant}-{seq:06}.webm
// or .mkv (".part" while being written), recording.json (who and when), segments.jsonl (one
// line per finished segment) and, once stopped, {recording}-manifest.json. Objects are stored
// under store.ObjectKey(org, session, store.KindRecordings, name) with name
// "{recording}-{participant}-{seq:06}.webm" (or .mkv) and "{recording}-manifest.json".
package recording

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/assist-video/assist/media"
	"github.com/assist-video/assist/recording/store"
)

// Errors returned by the Manager.
var (
	// ErrNotFound: no such recording is running on this Manager.
	ErrNotFound = errors.New("recording: no such recording")
	// ErrClosed: the Manager has been closed.
	ErrClosed = errors.New("recording: closed")
)

// Manifest states.
const (
	StateComplete    = "complete"    // stopped normally
	StateInterrupted = "interrupted" // the server stopped without stopping the recording
)

// DefaultSegmentDuration is how long a segment runs before the recorder cuts at the next
// keyframe.
const DefaultSegmentDuration = 5 * time.Second

// RoomTap is what the recorder needs from a call; *media.Room implements it.
type RoomTap interface {
	// Participants lists who is in the call now; the recorder polls it to find newcomers.
	Participants() []string
	// AddTap copies a participant's published RTP to t until remove is called.
	AddTap(participantID string, t media.Tap) (remove func(), err error)
	// RequestKeyframe asks the participant's camera for a keyframe.
	RequestKeyframe(participantID string)
}

var _ RoomTap = (*media.Room)(nil)

// Config configures a Manager.
type Config struct {
	SpoolDir        string        // local directory for segments until they are uploaded
	Store           *store.Store  // where segments and manifests go
	SegmentDuration time.Duration // 0 means DefaultSegmentDuration
	Logger          *slog.Logger  // nil means slog.Default()
}

// Manifest describes one recording: its segments in order (by start time, then participant).
type Manifest struct {
	RecordingID string    `json:"recording_id"`
	OrgID       string    `json:"org_id"`
	SessionID   string    `json:"session_id"`
	State       string    `json:"state"`
	StartedAt   time.Time `json:"started_at"`
	EndedAt     time.Time `json:"ended_at"`
	Segments    []Segment `json:"segments"`
}

// Segment is one WebM or Matroska file of one participant.
type Segment struct {
	Participant string    `json:"participant_id"`
	Seq         int       `json:"seq"`
	Key         string    `json:"key"` // ends in .webm (VP8, or audio alone) or .mkv (H.264)
	StartedAt   time.Time `json:"started_at"`
	DurationMS  int64     `json:"duration_ms"` // 0 when unknown (recovered without a journal line)
	Size        int64     `json:"size"`
	Tracks      []string  `json:"tracks"` // MIME types, e.g. "video/VP8", "audio/opus"; audio alone: "audio/opus"
	// ContentType is the object's: "video/webm", "audio/webm" (no video) or "video/x-matroska".
	ContentType string `json:"content_type,omitempty"`
	Width       int    `json:"width,omitempty"`
	Height      int    `json:"height,omitempty"`
}

// meta is recording.json in a recording's spool directory.
type meta struct {
	RecordingID string    `json:"recording_id"`
	OrgID       string    `json:"org_id"`
	SessionID   string    `json:"session_id"`
	StartedAt   time.Time `json:"started_at"`
}

const (
	metaFile    = "recording.json"
	journalFile = "segments.jsonl"
	pollEvery   = time.Second // how often a recording looks for new participants
)

// Manager runs the recordings of one server and their uploads.
type Manager struct {
	cfg Config
	log *slog.Logger
	up  *Uploader

	commits     sync.WaitGroup // the recordings' commit loops, stopped ones included
	uncommitted atomic.Int64   // segments and manifests closed but not yet queued for upload
	slowDisk    func()         // tests: runs before each commit, as a slow sync would

	mu         sync.Mutex
	closed     bool
	recordings map[string]*recording
}

// New builds a Manager. Call Run to upload, and Recover at start to pick up what a previous
// run left in the spool.
func New(cfg Config) *Manager {
	if cfg.SegmentDuration <= 0 {
		cfg.SegmentDuration = DefaultSegmentDuration
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "recording")
	return &Manager{
		cfg:        cfg,
		log:        log,
		up:         newUploader(cfg.Store, log),
		recordings: make(map[string]*recording),
	}
}

// Backlog is the number of files (segments and manifests) waiting to be uploaded, those still
// being synced to the spool included.
func (m *Manager) Backlog() int { return m.up.Backlog() + int(m.uncommitted.Load()) }

// Run uploads finished segments and manifests until ctx ends.
func (m *Manager) Run(ctx context.Context) error { return m.up.Run(ctx) }

// recording is one running recording.
type recording struct {
	meta
	dir  string
	room RoomTap
	log  *slog.Logger
	m    *Manager

	mu        sync.Mutex
	stopped   bool
	recorders map[string]*tappedRecorder
	segments  []Segment

	stop chan struct{} // ends the participant poller
	done chan struct{}

	// Closed segments, then the manifest, waiting for commitLoop.
	jobMu      sync.Mutex
	jobWake    *sync.Cond
	jobs       []commitJob
	jobsClosed bool
	failed     map[string]bool // segments that could not be committed (commitLoop's)
}

// commitJob is a closed segment to sync, rename, journal and queue, or the manifest to write
// and queue once every segment before it is done.
type commitJob struct {
	seg      segmentDone
	manifest *Manifest
}

type tappedRecorder struct {
	rec    *Recorder
	remove func()
}

// Start records every participant of the room, present and future, until Stop.
func (m *Manager) Start(ctx context.Context, orgID, sessionID string, room RoomTap) (string, error) {
	if room == nil {
		return "", errors.New("recording: start: nil room")
	}
	if _, err := store.SessionPrefix(orgID, sessionID); err != nil {
		return "", fmt.Errorf("recording: start: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	id := newID()
	rec := &recording{
		meta:      meta{RecordingID: id, OrgID: orgID, SessionID: sessionID, StartedAt: time.Now().UTC()},
		dir:       filepath.Join(m.cfg.SpoolDir, orgID, sessionID, id),
		room:      room,
		log:       m.log.With("org", orgID, "session", sessionID, "recording", id),
		m:         m,
		recorders: make(map[string]*tappedRecorder),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
		failed:    make(map[string]bool),
	}
	rec.jobWake = sync.NewCond(&rec.jobMu)
	if err := os.MkdirAll(rec.dir, 0o755); err != nil {
		return "", fmt.Errorf("recording: start: %w", err)
	}
	if err := writeJSONFile(filepath.Join(rec.dir, metaFile), rec.meta); err != nil {
		return "", fmt.Errorf("recording: start: %w", err)
	}

	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		os.RemoveAll(rec.dir)
		return "", ErrClosed
	}
	m.recordings[id] = rec
	m.commits.Add(1)
	m.mu.Unlock()

	go rec.commitLoop()
	rec.addParticipants()
	go rec.poll()
	rec.log.Info("recording started")
	return id, nil
}

func (r *recording) poll() {
	defer close(r.done)
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			r.addParticipants()
		}
	}
}

// addParticipants starts a recorder for every participant that has none yet.
func (r *recording) addParticipants() {
	for _, pid := range r.room.Participants() {
		r.mu.Lock()
		_, have := r.recorders[pid]
		stopped := r.stopped
		r.mu.Unlock()
		if have || stopped {
			continue
		}
		if _, err := store.ObjectKey(r.OrgID, r.SessionID, store.KindRecordings, objectName(r.RecordingID, pid, 1, extWebM)); err != nil {
			r.log.Warn("participant id cannot name a recording; not recording it", "participant", pid, "err", err)
			r.mu.Lock()
			r.recorders[pid] = &tappedRecorder{}
			r.mu.Unlock()
			continue
		}
		rec := newRecorder(r.dir, pid, r.m.cfg.SegmentDuration, r.log.With("participant", pid), r.segmentDone)
		room := r.room
		rec.RequestKeyframe = func() { room.RequestKeyframe(pid) }
		go rec.run()
		remove, err := r.room.AddTap(pid, rec)
		if err != nil {
			r.log.Warn("cannot tap participant", "participant", pid, "err", err)
			rec.Stop()
			continue
		}
		r.mu.Lock()
		if r.stopped {
			r.mu.Unlock()
			remove()
			rec.Stop()
			return
		}
		r.recorders[pid] = &tappedRecorder{rec: rec, remove: remove}
		r.mu.Unlock()
		room.RequestKeyframe(pid) // now that the tap sees it
		r.log.Info("recording participant", "participant", pid)
	}
}

// segmentDone runs on a recorder's goroutine for every closed segment: list it and hand it to
// commitLoop, so that the recorder goes on at once.
func (r *recording) segmentDone(d segmentDone) {
	key, err := store.ObjectKey(r.OrgID, r.SessionID, store.KindRecordings, objectName(r.RecordingID, d.Participant, d.Seq, filepath.Ext(d.path)))
	if err != nil { // checked when the participant was added
		r.log.Error("segment has no valid key", "err", err)
		return
	}
	d.Key = key
	r.mu.Lock()
	r.segments = append(r.segments, d.Segment)
	r.mu.Unlock()
	r.queueJob(commitJob{seg: d})
}

func (r *recording) queueJob(j commitJob) {
	r.m.uncommitted.Add(1)
	r.jobMu.Lock()
	if r.jobsClosed { // cannot happen: nothing is queued after the manifest
		r.jobMu.Unlock()
		r.m.uncommitted.Add(-1)
		r.log.Error("segment closed after the recording stopped")
		return
	}
	r.jobs = append(r.jobs, j)
	r.jobMu.Unlock()
	r.jobWake.Signal()
}

// closeJobs lets commitLoop end once it has done what is queued.
func (r *recording) closeJobs() {
	r.jobMu.Lock()
	r.jobsClosed = true
	r.jobMu.Unlock()
	r.jobWake.Signal()
}

// commitLoop makes closed segments durable in order (sync, rename, journal) and queues their
// upload; the manifest, queued last by Stop, is written only after every segment. Syncing
// here rather than on the recorder's goroutine keeps a slow disk from stalling the media and
// from stalling Stop.
func (r *recording) commitLoop() {
	defer r.m.commits.Done()
	for {
		r.jobMu.Lock()
		for len(r.jobs) == 0 && !r.jobsClosed {
			r.jobWake.Wait()
		}
		if len(r.jobs) == 0 {
			r.jobMu.Unlock()
			return
		}
		j := r.jobs[0]
		r.jobs = r.jobs[1:]
		r.jobMu.Unlock()
		if r.m.slowDisk != nil {
			r.m.slowDisk()
		}
		r.commit(j)
		r.m.uncommitted.Add(-1)
	}
}

func (r *recording) commit(j commitJob) {
	if j.manifest != nil {
		man := *j.manifest
		if len(r.failed) > 0 {
			man.Segments = slices.DeleteFunc(slices.Clone(man.Segments), func(s Segment) bool {
				return r.failed[segmentID(s.Participant, s.Seq)]
			})
		}
		if err := r.m.queueManifest(r.dir, man); err != nil {
			r.log.Error("cannot write the manifest", "err", err)
		}
		return
	}
	seg := j.seg
	if err := seg.commit(); err != nil {
		// Left as .part: Recover salvages it after a restart.
		r.log.Error("cannot commit a segment", "file", seg.path, "err", err)
		r.failed[segmentID(seg.Participant, seg.Seq)] = true
		return
	}
	if err := appendJournal(filepath.Join(r.dir, journalFile), seg.Segment); err != nil {
		r.log.Warn("cannot journal a segment", "err", err)
	}
	r.m.up.enqueue(upload{path: seg.path, key: seg.Key, contentType: seg.ContentType})
}

// Stop ends a recording: it finishes every participant's open segment and returns the
// manifest. Syncing the last segments to the spool, writing the manifest and queueing it for
// upload after the segments go on in the background (Backlog counts them; Close waits for
// them); Stop waits for neither that nor the uploads.
func (m *Manager) Stop(ctx context.Context, recordingID string) (Manifest, error) {
	m.mu.Lock()
	rec := m.recordings[recordingID]
	delete(m.recordings, recordingID)
	m.mu.Unlock()
	if rec == nil {
		return Manifest{}, fmt.Errorf("recording: stop %q: %w", recordingID, ErrNotFound)
	}
	return rec.finish(ctx)
}

func (r *recording) finish(ctx context.Context) (Manifest, error) {
	stopT0 := time.Now()
	r.mu.Lock()
	r.stopped = true
	recs := make([]*tappedRecorder, 0, len(r.recorders))
	for _, t := range r.recorders {
		if t.rec != nil {
			recs = append(recs, t)
		}
	}
	r.mu.Unlock()
	close(r.stop)
	<-r.done

	var wg sync.WaitGroup
	var errs []error
	var errMu sync.Mutex
	for _, t := range recs {
		t.remove()
		wg.Go(func() {
			if err := t.rec.Stop(); err != nil {
				errMu.Lock()
				errs = append(errs, err)
				errMu.Unlock()
			}
		})
	}
	wg.Wait()
	recT := time.Since(stopT0)

	r.mu.Lock()
	segs := slices.Clone(r.segments)
	r.mu.Unlock()
	man := Manifest{
		RecordingID: r.RecordingID, OrgID: r.OrgID, SessionID: r.SessionID,
		State: StateComplete, StartedAt: r.StartedAt, EndedAt: time.Now().UTC(),
		Segments: sortSegments(segs),
	}
	r.queueJob(commitJob{manifest: &man})
	r.closeJobs()
	r.log.Info("recording stopped", "segments", len(segs), "took", time.Since(stopT0), "recorders", recT)
	return man, errors.Join(errs...)
}

// queueManifest writes the manifest into the recording's spool directory and queues it; once
// it is stored, the directory is removed.
func (m *Manager) queueManifest(dir string, man Manifest) error {
	name := man.RecordingID + "-manifest.json"
	key, err := store.ObjectKey(man.OrgID, man.SessionID, store.KindRecordings, name)
	if err != nil {
		return fmt.Errorf("recording: manifest: %w", err)
	}
	path := filepath.Join(dir, name)
	if err := writeJSONFile(path, man); err != nil {
		return fmt.Errorf("recording: manifest: %w", err)
	}
	m.up.enqueue(upload{path: path, key: key, contentType: "application/json", after: func() {
		os.Remove(filepath.Join(dir, journalFile))
		os.Remove(filepath.Join(dir, metaFile))
		// Only an empty directory goes; then its parents, if empty too.
		for d := dir; d != filepath.Clean(m.cfg.SpoolDir) && os.Remove(d) == nil; d = filepath.Dir(d) {
		}
	}})
	return nil
}

// Close stops every running recording and waits, within ctx, until the uploads are done.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	m.closed = true
	recs := make([]*recording, 0, len(m.recordings))
	for _, r := range m.recordings {
		recs = append(recs, r)
	}
	clear(m.recordings)
	m.mu.Unlock()

	var errs []error
	for _, r := range recs {
		if _, err := r.finish(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	committed := make(chan struct{})
	go func() { m.commits.Wait(); close(committed) }()
	select {
	case <-committed:
	case <-ctx.Done():
		return errors.Join(append(errs, fmt.Errorf("recording: %d segments not synced: %w", m.uncommitted.Load(), ctx.Err()))...)
	}
	if err := m.up.drain(ctx); err != nil {
		errs = append(errs, fmt.Errorf("recording: %d uploads left: %w", m.up.Backlog(), err))
	}
	return errors.Join(errs...)
}

// abandon drops every recording as a crash would: no segment is finished, no manifest
// written, nothing more uploaded. For tests.
func (m *Manager) abandon() {
	m.mu.Lock()
	m.closed = true
	recs := make([]*recording, 0, len(m.recordings))
	for _, r := range m.recordings {
		recs = append(recs, r)
	}
	clear(m.recordings)
	m.mu.Unlock()
	for _, r := range recs {
		r.mu.Lock()
		r.stopped = true
		ts := slices.Collect(maps.Values(r.recorders))
		r.mu.Unlock()
		close(r.stop)
		<-r.done
		for _, t := range ts {
			if t.rec != nil {
				t.remove()
				t.rec.abandon()
			}
		}
		// What was closed before the "crash" reaches the disk; nothing more happens.
		r.closeJobs()
	}
	m.commits.Wait()
}

func sortSegments(segs []Segment) []Segment {
	slices.SortStableFunc(segs, func(a, b Segment) int {
		if c := a.StartedAt.Compare(b.StartedAt); c != 0 {
			return c
		}
		if c := strings.Compare(a.Participant, b.Participant); c != 0 {
			return c
		}
		return a.Seq - b.Seq
	})
	return segs
}

// objectName names a segment in the store; ext is ".webm" or ".mkv".
func objectName(recordingID, participant string, seq int, ext string) string {
	return fmt.Sprintf("%s-%s-%06d%s", recordingID, participant, seq, ext)
}

// segmentFileName names a segment in the spool; ext is ".webm" or ".mkv".
func segmentFileName(participant string, seq int, ext string) string {
	return fmt.Sprintf("%s-%06d%s", participant, seq, ext)
}

func newID() string {
	b := make([]byte, 10)
	rand.Read(b)
	return "rec_" + hex.EncodeToString(b)
}

// writeJSONFile writes v to path atomically: a temporary file, synced, then renamed.
func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func appendJournal(path string, seg Segment) error {
	b, err := json.Marshal(seg)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// readJournal reads the segments journaled in a recording's directory; a torn last line (a
// crash while appending) is ignored.
func readJournal(path string) []Segment {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []Segment
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var s Segment
		if json.Unmarshal(sc.Bytes(), &s) == nil {
			out = append(out, s)
		}
	}
	return out
}
