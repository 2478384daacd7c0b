package recording

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/at-wat/ebml-go/mkvcore"

	"github.com/assist-video/assist/recording/store"
)

// Recover picks up what a previous run of the server left in spoolDir (normally the Manager's
// SpoolDir): recordings that were never stopped, or whose uploads had not finished. It queues
// every finished segment for upload, salvages what it can of a segment that was being written
// (or deletes it when nothing playable is left), and queues a manifest: the one a Stop already
// wrote, or a new one with state "interrupted". Call it at start, before Start, with Run going
// or followed by it; it returns the manifests it queued.
func (m *Manager) Recover(ctx context.Context, spoolDir string) ([]Manifest, error) {
	dirs, err := filepath.Glob(filepath.Join(spoolDir, "*", "*", "*"))
	if err != nil {
		return nil, fmt.Errorf("recording: recover: %w", err)
	}
	var out []Manifest
	var errs []error
	for _, dir := range dirs {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			continue
		}
		man, ok, err := m.recoverDir(dir)
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			out = append(out, man)
		}
	}
	return out, errors.Join(errs...)
}

func (m *Manager) recoverDir(dir string) (Manifest, bool, error) {
	id := filepath.Base(dir)
	session := filepath.Base(filepath.Dir(dir))
	org := filepath.Base(filepath.Dir(filepath.Dir(dir)))
	m.mu.Lock()
	_, running := m.recordings[id]
	m.mu.Unlock()
	if running {
		return Manifest{}, false, nil
	}
	log := m.log.With("org", org, "session", session, "recording", id)

	md := meta{RecordingID: id, OrgID: org, SessionID: session}
	if b, err := os.ReadFile(filepath.Join(dir, metaFile)); err == nil {
		json.Unmarshal(b, &md)
	}
	journaled := make(map[string]Segment)
	for _, s := range readJournal(filepath.Join(dir, journalFile)) {
		journaled[segmentID(s.Participant, s.Seq)] = s
	}

	entries, err := os.ReadDir(dir)
	if err != nil {
		return Manifest{}, false, fmt.Errorf("recording: recover %s: %w", dir, err)
	}
	var segs []Segment
	var stopped *Manifest
	for _, e := range entries {
		name := e.Name()
		path := filepath.Join(dir, name)
		switch {
		case name == id+"-manifest.json":
			var man Manifest
			if b, err := os.ReadFile(path); err == nil && json.Unmarshal(b, &man) == nil {
				stopped = &man
			}
		case strings.HasSuffix(name, ".tmp"):
			os.Remove(path) // a manifest or meta file torn by the crash
		case strings.HasSuffix(name, ".part"), strings.HasSuffix(name, ".salvage"):
			final := strings.TrimSuffix(strings.TrimSuffix(path, ".part"), ".salvage")
			if _, _, _, ok := parseSegmentFileName(filepath.Base(final)); !ok {
				continue
			}
			seg, ok := salvage(path, final)
			os.Remove(path)
			if !ok {
				log.Warn("discarded an unfinished segment with nothing playable", "file", name)
				continue
			}
			log.Info("salvaged an unfinished segment", "file", name, "duration_ms", seg.DurationMS)
			journaled[segmentID(seg.Participant, seg.Seq)] = seg
			segs = append(segs, m.queueRecovered(md, final, seg))
		default:
			p, seq, _, valid := parseSegmentFileName(name)
			if !valid {
				continue
			}
			seg, ok := journaled[segmentID(p, seq)]
			if !ok {
				seg = Segment{Participant: p, Seq: seq}
				if st, err := os.Stat(path); err == nil {
					seg.Size = st.Size()
					seg.StartedAt = st.ModTime().UTC()
				}
			}
			segs = append(segs, m.queueRecovered(md, path, seg))
		}
	}
	if stopped != nil {
		// Stop finished; only uploads were left. The segments are already queued above.
		if err := m.queueManifest(dir, *stopped); err != nil {
			return Manifest{}, false, err
		}
		return *stopped, true, nil
	}
	// Segments that were journaled and already uploaded are no longer on disk but belong in
	// the manifest too.
	seen := make(map[string]bool, len(segs))
	for _, s := range segs {
		seen[segmentID(s.Participant, s.Seq)] = true
	}
	for name, s := range journaled {
		if !seen[name] {
			segs = append(segs, s)
		}
	}
	man := Manifest{
		RecordingID: md.RecordingID, OrgID: md.OrgID, SessionID: md.SessionID,
		State: StateInterrupted, StartedAt: md.StartedAt, EndedAt: lastEnd(segs),
		Segments: sortSegments(segs),
	}
	if err := m.queueManifest(dir, man); err != nil {
		return Manifest{}, false, err
	}
	log.Info("recovered an interrupted recording", "segments", len(segs))
	return man, true, nil
}

// queueRecovered queues a segment left on disk and returns it with its key.
func (m *Manager) queueRecovered(md meta, path string, seg Segment) Segment {
	key, err := store.ObjectKey(md.OrgID, md.SessionID, store.KindRecordings, objectName(md.RecordingID, seg.Participant, seg.Seq, filepath.Ext(path)))
	if err != nil {
		m.log.Warn("recovered segment has no valid key; leaving it", "path", path, "err", err)
		return seg
	}
	seg.Key = key
	if seg.ContentType == "" {
		seg.ContentType = contentTypeOf(path, seg.Tracks)
	}
	m.up.enqueue(upload{path: path, key: key, contentType: seg.ContentType})
	return seg
}

// segmentID names a participant's segment whatever its format.
func segmentID(participant string, seq int) string {
	return fmt.Sprintf("%s-%06d", participant, seq)
}

// parseSegmentFileName splits "{participant}-{seq:06}.webm" (or .mkv).
func parseSegmentFileName(name string) (participant string, seq int, ext string, ok bool) {
	ext = filepath.Ext(name)
	if ext != extWebM && ext != extMatroska {
		return "", 0, "", false
	}
	base := strings.TrimSuffix(name, ext)
	i := strings.LastIndexByte(base, '-')
	if i <= 0 {
		return "", 0, "", false
	}
	seq, err := strconv.Atoi(base[i+1:])
	if err != nil {
		return "", 0, "", false
	}
	return base[:i], seq, ext, true
}

func lastEnd(segs []Segment) time.Time {
	var end time.Time
	for _, s := range segs {
		if e := s.StartedAt.Add(time.Duration(s.DurationMS) * time.Millisecond); e.After(end) {
			end = e
		}
	}
	return end
}

// salvage rewrites what is readable of an unfinished segment (the blocks written before the
// crash; a torn last block is lost) as a complete file at final, with cues and duration. It
// reports false when nothing playable is left: no video keyframe to start from, or, for audio
// alone, no audio.
func salvage(part, final string) (Segment, bool) {
	participant, seq, _, ok := parseSegmentFileName(filepath.Base(final))
	if !ok {
		return Segment{}, false
	}
	src := final + ".salvage" // createSegment writes final+".part"
	if err := os.Rename(part, src); err != nil {
		return Segment{}, false
	}
	defer os.Remove(src)
	videoCodecID, video, audio := readBlocks(src)
	var format segmentFormat
	switch videoCodecID {
	case "":
		if len(audio) == 0 {
			return Segment{}, false
		}
	case "V_VP8":
		if len(video) == 0 || !isVP8Keyframe(video[0].data) {
			return Segment{}, false
		}
		w, h := vp8Size(video[0].data)
		format = segmentFormat{video: codecVP8, width: w, height: h}
	case "V_MPEG4/ISO/AVC":
		// The recorder puts the parameter sets in every segment's first frame.
		if len(video) == 0 {
			return Segment{}, false
		}
		var p h264Params
		au := scanH264(video[0].data)
		if !au.idr || p.update(au) != nil || p.config == nil {
			return Segment{}, false
		}
		format = segmentFormat{video: codecH264, width: p.width, height: p.height, codecPrivate: p.config}
	default:
		return Segment{}, false
	}
	seg, err := createSegment(final, format, 0)
	if err != nil {
		return Segment{}, false
	}
	st, _ := os.Stat(src)
	i, j := 0, 0
	for i < len(video) || j < len(audio) {
		if j >= len(audio) || (i < len(video) && video[i].at <= audio[j].at) {
			seg.write(videoTrackNumber, video[i].key, video[i].at, video[i].data)
			i++
		} else {
			seg.write(audioTrackNumber, true, audio[j].at, audio[j].data)
			j++
		}
	}
	seg.info = Segment{
		Participant: participant, Seq: seq,
		Tracks:      format.tracks(),
		ContentType: format.contentType(),
		Width:       format.width, Height: format.height,
	}
	done, err := seg.finish()
	if err != nil {
		os.Remove(final + ".part")
		return Segment{}, false
	}
	if st != nil {
		done.StartedAt = st.ModTime().Add(-time.Duration(done.DurationMS) * time.Millisecond).UTC()
	}
	return done.Segment, true
}

type block struct {
	key  bool
	at   time.Duration
	data []byte
}

// readBlocks reads the video and audio blocks of a segment file up to where it is cut off,
// and the codec ID of its video track ("" when it has none).
func readBlocks(path string) (videoCodecID string, video, audio []block) {
	f, err := os.Open(path)
	if err != nil {
		return "", nil, nil
	}
	defer f.Close()
	readers, err := mkvcore.NewSimpleBlockReader(f, mkvcore.WithOnFatalHandler(func(error) {}))
	if err != nil {
		return "", nil, nil
	}
	var wg sync.WaitGroup
	for _, r := range readers {
		var out *[]block
		switch r.TrackEntry().TrackNumber {
		case videoTrackNumber:
			out = &video
			videoCodecID = r.TrackEntry().CodecID
		case audioTrackNumber:
			out = &audio
		}
		wg.Go(func() {
			defer r.Close()
			for {
				b, key, ts, err := r.Read()
				if err != nil {
					return
				}
				if out != nil {
					*out = append(*out, block{key: key, at: time.Duration(ts) * time.Millisecond, data: b})
				}
			}
		})
	}
	wg.Wait()
	return videoCodecID, video, audio
}
