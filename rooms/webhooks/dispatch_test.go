package webhooks

import (
	"encoding/json"
	"errors"
	"testing"
)

// TestPublishToReachesOneEndpointWhateverItSubscribes: an organisation's dispatch receiver
// gets the event although it subscribes to other types, once even when Publish follows, and
// signed like every delivery; other organisations' ids and disabled endpoints are refused.
func TestPublishToReachesOneEndpointWhateverItSubscribes(t *testing.T) {
	_, w := setup(t, testConfig())
	dispatch := newReceiver(t, ok)
	ep := createEndpoint(t, w, "org_a", dispatch, TypeRecordingReady)
	subscriber := newReceiver(t, ok)
	createEndpoint(t, w, "org_a", subscriber, TypeSessionEmergency)
	startDeliverer(t, w)

	ev := Event{ID: "emg.ses_1.flagged.1", OrgID: "org_a", Type: TypeSessionEmergency, Data: json.RawMessage(`{"kind":"flagged"}`)}
	if err := w.PublishTo(t.Context(), ev, ep.ID); err != nil {
		t.Fatal(err)
	}
	publish(t, w, ev)
	if err := w.PublishTo(t.Context(), ev, ep.ID); err != nil { // a retry
		t.Fatal(err)
	}
	eventually(t, "both endpoints get the event", func() bool {
		return len(dispatch.requests()) >= 1 && len(subscriber.requests()) >= 1
	})
	eventually(t, "the dispatch delivery is done", allInState(t, w, "org_a", ep.ID, 1, StateDelivered))
	for _, r := range dispatch.requests() {
		if r.sigErr != nil || r.header.Get(HeaderID) != ev.ID {
			t.Fatalf("dispatch request: id %q, signature %v", r.header.Get(HeaderID), r.sigErr)
		}
	}
	if n := len(dispatch.requests()); n != 1 {
		t.Fatalf("the dispatch receiver got %d requests, want 1", n)
	}

	if err := w.PublishTo(t.Context(), ev, "whk_none"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an unknown endpoint: %v", err)
	}
	other := ev
	other.OrgID = "org_b"
	if err := w.PublishTo(t.Context(), other, ep.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another organisation's endpoint: %v", err)
	}
	if _, err := w.SetEnabled(t.Context(), "org_a", ep.ID, false); err != nil {
		t.Fatal(err)
	}
	ev.ID = "emg.ses_1.location.1.1"
	if err := w.PublishTo(t.Context(), ev, ep.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a disabled endpoint: %v", err)
	}
}
