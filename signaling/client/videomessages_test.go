package client_test

import (
	"net/http"
	"testing"

	"github.com/assist-video/assist/signaling/api"
	"github.com/assist-video/assist/signaling/client"
)

func TestVideoMessagesAndEmergency(t *testing.T) {
	n := startNode(t)
	c := newClient(t, n.URL, client.WithAPIKey(n.APIKey))
	ctx := ctxT(t)
	list, err := c.ListVideoMessages(ctx, client.VideoMessageFilter{State: "new"})
	if err != nil || list.Data == nil || len(list.Data) != 0 {
		t.Fatalf("an empty inbox: %v %+v", err, list)
	}
	if _, err := c.ListVideoMessages(ctx, client.VideoMessageFilter{State: "lost"}); client.StatusOf(err) != http.StatusBadRequest {
		t.Fatalf("a bad state: %v", err)
	}
	for name, call := range map[string]func() error{
		"get":       func() error { _, err := c.GetVideoMessage(ctx, "vm_nope"); return err },
		"mark":      func() error { _, err := c.SetVideoMessageState(ctx, "vm_nope", "handled"); return err },
		"call back": func() error { _, err := c.CallBack(ctx, "vm_nope", nil); return err },
		"delete":    func() error { return c.DeleteVideoMessage(ctx, "vm_nope") },
	} {
		if err := call(); client.StatusOf(err) != http.StatusNotFound {
			t.Errorf("%s an unknown message: %v", name, err)
		}
	}

	s, err := c.CreateSession(ctx, api.CreateSession{})
	if err != nil {
		t.Fatal(err)
	}
	e, err := c.SetEmergency(ctx, s.ID, true, "a fall")
	if err != nil || !e.Active || e.Reason != "a fall" || e.FlaggedAt == nil {
		t.Fatalf("flag: %v %+v", err, e)
	}
	if e, err = c.GetEmergency(ctx, s.ID); err != nil || !e.Active || e.Location != nil {
		t.Fatalf("get: %v %+v", err, e)
	}
	if e, err = c.SetEmergency(ctx, s.ID, false, ""); err != nil || e.Active || e.ClearedAt == nil {
		t.Fatalf("clear: %v %+v", err, e)
	}
	if _, err := c.GetEmergency(ctx, "ses_nope"); client.StatusOf(err) != http.StatusNotFound {
		t.Fatalf("an unknown session: %v", err)
	}
}
