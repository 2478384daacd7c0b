package signaling

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/assist-video/assist/recording/store"
	"github.com/assist-video/assist/recording/store/storetest"
	"github.com/assist-video/assist/rooms"
	"github.com/assist-video/assist/signaling/api"
	"github.com/assist-video/assist/signaling/problem"
	"github.com/assist-video/assist/signaling/wire"
)

func (ts *testServer) setPolicy(t *testing.T, policy map[string]any) organizationView {
	t.Helper()
	var org organizationView
	if resp := ts.do(t, "PATCH", "/v1/organization", ts.APIKey, map[string]any{"policy": policy}, &org); resp.StatusCode != 200 {
		t.Fatalf("set policy %v: %d", policy, resp.StatusCode)
	}
	return org
}

func TestOrganizationPolicy(t *testing.T) {
	ts := newTestServer(t)
	var org organizationView
	if resp := ts.do(t, "GET", "/v1/organization", ts.APIKey, nil, &org); resp.StatusCode != 200 {
		t.Fatalf("get: %d", resp.StatusCode)
	}
	if org.ID == "" || org.Policy.AutoRecord || org.Policy.RetentionDays != 0 || org.Limits.FileMaxBytes != maxFileSize ||
		len(org.Limits.FileTypes) != len(allowedFileTypes) {
		t.Fatalf("defaults = %+v", org)
	}

	t.Run("bad policies are refused with the field named", func(t *testing.T) {
		for _, tc := range []struct {
			policy map[string]any
			field  string
		}{
			{map[string]any{"retention_days": -1}, "retention_days"},
			{map[string]any{"retention_days": 100000}, "retention_days"},
			{map[string]any{"file_max_bytes": maxFileSize + 1}, "file_max_bytes"},
			{map[string]any{"file_types": []string{"application/x-msdownload"}}, "file type"},
		} {
			var p problem.Details
			if resp := ts.do(t, "PATCH", "/v1/organization", ts.APIKey, map[string]any{"policy": tc.policy}, &p); resp.StatusCode != 422 || !strings.Contains(p.Detail, tc.field) {
				t.Errorf("%v: %d %+v", tc.policy, resp.StatusCode, p)
			}
		}
		var p problem.Details
		if resp := ts.do(t, "PATCH", "/v1/organization", ts.APIKey, map[string]any{"polcy": map[string]any{}}, &p); resp.StatusCode != 400 {
			t.Errorf("an unknown field was accepted: %d", resp.StatusCode)
		}
	})

	t.Run("a specialist who is not an admin cannot change it", func(t *testing.T) {
		var sp specialistView
		if resp := ts.do(t, "POST", "/v1/specialists", ts.APIKey, createSpecialist{Email: "bea@example.com", Name: "Bea", Password: "a long password"}, &sp); resp.StatusCode != 201 || sp.Role != rooms.StaffSpecialist {
			t.Fatalf("create specialist: %d %+v", resp.StatusCode, sp)
		}
		var login api.LoginResult
		ts.do(t, "POST", "/v1/auth/login", "", api.Login{Email: "bea@example.com", Password: "a long password"}, &login)
		if resp := ts.do(t, "PATCH", "/v1/organization", login.Token, map[string]any{"policy": map[string]any{"auto_record": true}}, nil); resp.StatusCode != 403 {
			t.Fatalf("console token changed the policy: %d", resp.StatusCode)
		}
		if resp := ts.do(t, "GET", "/v1/organization", login.Token, nil, nil); resp.StatusCode != 200 {
			t.Fatalf("console token cannot read the organisation: %d", resp.StatusCode)
		}
	})

	t.Run("a change is kept, partial patches keep the rest, and it is audited", func(t *testing.T) {
		ts.setPolicy(t, map[string]any{"auto_record": true, "retention_days": 30, "file_types": []string{"image/png", "application/pdf", "image/png"}})
		org := ts.setPolicy(t, map[string]any{"file_max_bytes": 1 << 20})
		want := policyView{AutoRecord: true, RetentionDays: 30, FileMaxBytes: 1 << 20, FileTypes: []string{"application/pdf", "image/png"}}
		if org.Policy.AutoRecord != want.AutoRecord || org.Policy.RetentionDays != want.RetentionDays ||
			org.Policy.FileMaxBytes != want.FileMaxBytes || strings.Join(org.Policy.FileTypes, ",") != strings.Join(want.FileTypes, ",") {
			t.Fatalf("policy = %+v, want %+v", org.Policy, want)
		}
		var events struct {
			Data []struct {
				Action string `json:"action"`
			} `json:"data"`
		}
		ts.do(t, "GET", "/v1/audit-events?action=settings.change", ts.APIKey, nil, &events)
		if len(events.Data) != 2 {
			t.Fatalf("audit has %d settings changes, want 2", len(events.Data))
		}
	})
}

func TestFilePolicyNarrowsWhatMayBeShared(t *testing.T) {
	ts := newTestServer(t)
	c := ts.startCall(t)
	ts.setPolicy(t, map[string]any{"file_types": []string{"image/png"}, "file_max_bytes": 8 << 10})
	base := ts.URL + "/v1/sessions/" + c.session.ID + "/files"
	tok := linkToken(c.session.CustomerURL)

	small := pngImage(t, 16, 16)
	pdf := append([]byte("%PDF-1.4\n"), bytes.Repeat([]byte("x"), 100)...)
	big := append(pngImage(t, 16, 16), make([]byte, 9<<10)...)
	for _, tc := range []struct {
		name string
		body []byte
		want int
	}{
		{"a PDF, allowed by the platform but not by the organisation, is refused", pdf, http.StatusUnsupportedMediaType},
		{"a PNG over the organisation's limit is refused", big, http.StatusRequestEntityTooLarge},
		{"a small PNG is shared", small, http.StatusCreated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := upload(t, base+"?name=f.bin", tok, tc.body)
			if resp.StatusCode != tc.want {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
		})
	}
	prefix, _ := store.SessionPrefix(c.session.OrganizationID, c.session.ID)
	objects, err := ts.objects.List(context.Background(), prefix)
	if err != nil || len(objects) != 1 {
		t.Fatalf("stored %d objects (%v), want only the allowed one", len(objects), err)
	}
}

func TestDeletingASessionDeletesEverythingItStored(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	keep := ts.startCall(t) // another session of the same organisation: untouched
	c := ts.startCall(t)
	for _, call := range []*inCall{keep, c} {
		if resp, body := upload(t, ts.URL+"/v1/sessions/"+call.session.ID+"/snapshots", linkToken(call.session.CustomerURL), pngImage(t, 64, 48)); resp.StatusCode != 201 {
			t.Fatalf("snapshot: %d %s", resp.StatusCode, body)
		}
		if resp, body := upload(t, ts.URL+"/v1/sessions/"+call.session.ID+"/files?name=a.png", linkToken(call.session.SpecialistURL), pngImage(t, 8, 8)); resp.StatusCode != 201 {
			t.Fatalf("file: %d %s", resp.StatusCode, body)
		}
		call.customer.send(wire.TypeChat, wire.ChatSend{Text: "my serial number is 12345"})
	}
	c.specialist.expect(wire.TypeChat, nil)
	keep.specialist.expect(wire.TypeChat, nil)

	if resp := ts.do(t, "DELETE", "/v1/sessions/"+c.session.ID, "", nil, nil); resp.StatusCode != 401 {
		t.Fatalf("deleted without credentials: %d", resp.StatusCode)
	}
	if resp := ts.do(t, "DELETE", "/v1/sessions/"+c.session.ID, ts.APIKey, nil, nil); resp.StatusCode != 204 {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	// The people in the call are told it ended.
	c.customer.expect(wire.TypeSessionEnded, nil)

	prefix, _ := store.SessionPrefix(c.session.OrganizationID, c.session.ID)
	if objects, err := ts.objects.List(ctx, prefix); err != nil || len(objects) != 0 {
		t.Fatalf("%d objects left behind (%v)", len(objects), err)
	}
	if resp := ts.do(t, "GET", "/v1/sessions/"+c.session.ID, ts.APIKey, nil, nil); resp.StatusCode != 404 {
		t.Fatalf("the deleted session is still there: %d", resp.StatusCode)
	}
	if entries, err := ts.rooms.Timeline(ctx, c.session.OrganizationID, c.session.ID); err != nil || len(entries) != 0 {
		t.Fatalf("its chat is still kept: %d entries (%v)", len(entries), err)
	}
	if resp := ts.do(t, "DELETE", "/v1/sessions/"+c.session.ID, ts.APIKey, nil, nil); resp.StatusCode != 404 {
		t.Fatalf("deleting twice: %d", resp.StatusCode)
	}

	keptPrefix, _ := store.SessionPrefix(keep.session.OrganizationID, keep.session.ID)
	if objects, _ := ts.objects.List(ctx, keptPrefix); len(objects) != 2 {
		t.Fatalf("the other session has %d objects, want 2", len(objects))
	}
	if got := ts.getSession(t, keep.session.ID); len(got.Timeline) == 0 {
		t.Fatal("the other session lost its timeline")
	}
}

func TestRetentionDeletesOnlyExpiredObjectsOfOrganisationsThatAskForIt(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	c := ts.startCall(t)
	if resp, body := upload(t, ts.URL+"/v1/sessions/"+c.session.ID+"/snapshots", linkToken(c.session.CustomerURL), pngImage(t, 64, 48)); resp.StatusCode != 201 {
		t.Fatalf("snapshot: %d %s", resp.StatusCode, body)
	}
	// A second organisation that keeps everything.
	other, err := ts.rooms.CreateOrganization(ctx, "Keeps everything")
	if err != nil {
		t.Fatal(err)
	}
	otherKey, _ := store.ObjectKey(other.ID, "ses_x", store.KindFiles, "a.png")
	if _, err := ts.objects.Put(ctx, otherKey, bytes.NewReader([]byte("png")), 3, "image/png"); err != nil {
		t.Fatal(err)
	}
	ts.setPolicy(t, map[string]any{"retention_days": 2})
	orgPrefix, _ := store.OrgPrefix(c.session.OrganizationID)
	count := func(prefix string) int {
		objects, err := ts.objects.List(ctx, prefix)
		if err != nil {
			t.Fatal(err)
		}
		return len(objects)
	}

	if err := ts.applyRetention(ctx, time.Now().Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := count(orgPrefix); n != 1 {
		t.Fatalf("after one day %d objects remain, want the snapshot kept", n)
	}
	if err := ts.applyRetention(ctx, time.Now().Add(49*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := count(orgPrefix); n != 0 {
		t.Fatalf("after two days %d objects remain, want none", n)
	}
	otherPrefix, _ := store.OrgPrefix(other.ID)
	if n := count(otherPrefix); n != 1 {
		t.Fatalf("the organisation without retention lost its objects: %d left", n)
	}
}

// TestAutoRecordPolicyRecordsEveryCall: with the organisation's policy on, admitting the
// customer starts a recording; everyone is told before it starts; it is stored when the
// session ends.
func TestAutoRecordPolicyRecordsEveryCall(t *testing.T) {
	ts := newTestServer(t)
	ts.setPolicy(t, map[string]any{"auto_record": true})
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
	var notice wire.Recording
	customer.expect(wire.TypeRecording, &notice)
	if !notice.Starting || notice.Active {
		t.Fatalf("first recording message = %+v, want the notice before it starts", notice)
	}
	customer.expect(wire.TypeRecording, &notice)
	if !notice.Active || notice.RecordingID == "" {
		t.Fatalf("indicator = %+v", notice)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := specialist.peer.WaitReceivedFrom(ctx, customer.id, webrtc.RTPCodecTypeVideo, 60); err != nil {
		t.Fatal(err)
	}
	if resp := ts.do(t, "POST", "/v1/sessions/"+s.ID+"/end", ts.APIKey, nil, nil); resp.StatusCode != 200 {
		t.Fatalf("end: %d", resp.StatusCode)
	}
	recs := ts.waitRecordings(t, s.ID, 1)
	if recs[0].ID != notice.RecordingID || recs[0].State != "complete" || len(recs[0].Segments) == 0 {
		t.Fatalf("recording = %+v", recs[0])
	}
	var events struct {
		Data []struct {
			Actor struct {
				Kind string `json:"kind"`
			} `json:"actor"`
		} `json:"data"`
	}
	ts.do(t, "GET", "/v1/audit-events?action=recording.start", ts.APIKey, nil, &events)
	if len(events.Data) != 1 || events.Data[0].Actor.Kind != "system" {
		t.Fatalf("audit = %+v, want one start by the system", events.Data)
	}
}

// waitRecordings waits until n recordings of a session are stored.
func (ts *testServer) waitRecordings(t *testing.T, sessionID string, n int) []recordingView {
	t.Helper()
	var list struct {
		Data []recordingView `json:"data"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(list.Data) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d recordings reached storage", len(list.Data), n)
		}
		time.Sleep(100 * time.Millisecond)
		ts.do(t, "GET", "/v1/sessions/"+sessionID+"/recordings", ts.APIKey, nil, &list)
	}
	return list.Data
}

// TestMinIOOutageDuringARecording: MinIO is killed mid-recording; the specialist is told that
// uploads are behind, the API says so too; when MinIO is back every segment arrives.
func TestMinIOOutageDuringARecording(t *testing.T) {
	minio := storetest.NewMinIO(t)
	cfg := testConfig(t)
	s3 := minio.Config()
	cfg.S3Endpoint, cfg.S3AccessKey, cfg.S3SecretKey, cfg.S3Bucket, cfg.S3Region = s3.Endpoint, s3.AccessKey, s3.SecretKey, s3.Bucket, s3.Region
	ts := startTestServer(t, cfg)

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
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := specialist.peer.WaitReceivedFrom(ctx, customer.id, webrtc.RTPCodecTypeVideo, 10); err != nil {
		t.Fatal(err)
	}
	var rec recordingView
	if resp := ts.do(t, "POST", "/v1/sessions/"+s.ID+"/recordings", ts.APIKey, nil, &rec); resp.StatusCode != 201 {
		t.Fatalf("start: %d", resp.StatusCode)
	}
	minio.Stop()

	// Segments are cut every few seconds; with storage gone they pile up on disk.
	var behind wire.Storage
	specialist.expect(wire.TypeStorage, &behind)
	if behind.UploadsBehind == 0 {
		t.Fatalf("storage = %+v", behind)
	}
	var stopped recordingView
	if resp := ts.do(t, "POST", "/v1/sessions/"+s.ID+"/recordings/"+rec.ID+"/stop", ts.APIKey, nil, &stopped); resp.StatusCode != 200 || stopped.UploadsBehind == 0 {
		t.Fatalf("stop while storage is down: %d, uploads behind %d", resp.StatusCode, stopped.UploadsBehind)
	}
	minio.Start()
	for behind.UploadsBehind != 0 {
		specialist.expect(wire.TypeStorage, &behind)
	}
	recs := ts.waitRecordings(t, s.ID, 1)
	if recs[0].State != "complete" || len(recs[0].Segments) < 2 {
		t.Fatalf("recording after the outage = %+v", recs[0])
	}
	for _, seg := range recs[0].Segments {
		resp, err := http.Get(seg.URL)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("segment %d of %s is missing: %v %v", seg.Seq, seg.ParticipantID, err, resp)
		}
		resp.Body.Close()
	}
}
