package signaling

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/assist-video/assist/rooms/webhooks"
	"github.com/assist-video/assist/signaling/wire"
)

// dispatchData is the data of a session.emergency webhook as a dispatch centre reads it.
type dispatchData struct {
	Kind      string        `json:"kind"`
	SessionID string        `json:"session_id"`
	Emergency emergencyView `json:"emergency"`
	Location  *struct {
		Latitude  float64 `json:"latitude"`
		Longitude float64 `json:"longitude"`
		Accuracy  float64 `json:"accuracy"`
	} `json:"location"`
	Session *struct {
		ID           string `json:"id"`
		Participants []struct {
			Name string `json:"name"`
		} `json:"participants"`
	} `json:"session"`
	Timeline []wire.Envelope `json:"timeline"`
}

func dispatchOf(t *testing.T, ev hookEvent) dispatchData {
	t.Helper()
	var d dispatchData
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		t.Fatalf("dispatch data %s: %v", ev.Data, err)
	}
	return d
}

// TestEmergencyReachesDispatch: a specialist flags the call; the customer is asked for their
// location; the organisation's dispatch receiver gets the session, its timeline and the
// location, then each update, then the clearing; the API shows the latest location.
func TestEmergencyReachesDispatch(t *testing.T) {
	ts := newTestServer(t)
	dispatch := startHookReceiver(t)
	// The dispatch endpoint subscribes to something else: the setting alone sends it emergencies.
	endpoint := dispatch.register(t, ts, webhooks.TypeRecordingReady)

	t.Run("the dispatch receiver must be a webhook of the organisation", func(t *testing.T) {
		if resp := ts.do(t, "PATCH", "/v1/organization", ts.APIKey, map[string]any{"policy": map[string]any{"dispatch_webhook_id": "whk_none"}}, nil); resp.StatusCode != http.StatusUnprocessableEntity {
			t.Fatalf("%d, want 422", resp.StatusCode)
		}
	})
	var org organizationView
	if resp := ts.do(t, "PATCH", "/v1/organization", ts.APIKey, map[string]any{"policy": map[string]any{"dispatch_webhook_id": endpoint}}, &org); resp.StatusCode != 200 || org.Policy.DispatchWebhookID != endpoint {
		t.Fatalf("set dispatch: %d %+v", resp.StatusCode, org.Policy)
	}

	call := ts.startCall(t)
	call.customer.send(wire.TypeChat, wire.ChatSend{Text: "there is smoke in the kitchen"})
	call.specialist.expect(wire.TypeChat, nil)

	t.Run("only a specialist in the call may flag it", func(t *testing.T) {
		call.customer.send(wire.TypeEmergency, wire.EmergencySend{Active: true})
		var e wire.Error
		call.customer.expect(wire.TypeError, &e)
		if e.Code != wire.CodeForbidden {
			t.Fatalf("customer flagging: %+v", e)
		}
	})

	call.specialist.send(wire.TypeEmergency, wire.EmergencySend{Active: true, Reason: "fire"})
	var flag wire.Emergency
	call.customer.expect(wire.TypeEmergency, &flag)
	if !flag.Active || flag.Reason != "fire" || flag.From.ParticipantID != call.specialistID {
		t.Fatalf("the customer was told %+v", flag)
	}
	call.customer.expect(wire.TypeGeolocationRequest, nil) // the page asks the browser, which asks the customer

	first := dispatchOf(t, dispatch.waitFor("flagged", func(ev hookEvent) bool {
		return ev.Type == webhooks.TypeSessionEmergency && dispatchOf(t, ev).Kind == "flagged"
	}))
	if first.SessionID != call.session.ID || !first.Emergency.Active || first.Emergency.Reason != "fire" || first.Session == nil ||
		first.Session.ID != call.session.ID || len(first.Session.Participants) != 2 {
		t.Fatalf("first dispatch %+v", first)
	}
	sawChat := false
	for _, env := range first.Timeline {
		var chat wire.Chat
		if env.Type == wire.TypeChat && json.Unmarshal(env.Payload, &chat) == nil && chat.Text == "there is smoke in the kitchen" {
			sawChat = true
		}
	}
	if !sawChat {
		t.Fatalf("the timeline sent to dispatch lacks the chat: %+v", first.Timeline)
	}

	for i, pos := range []wire.GeolocationSend{
		{Latitude: 48.8584, Longitude: 2.2945, Accuracy: 12, Timestamp: 1},
		{Latitude: 48.8590, Longitude: 2.2950, Accuracy: 8, Timestamp: 2},
	} {
		call.customer.send(wire.TypeGeolocation, pos)
		var seen wire.Geolocation
		call.specialist.expect(wire.TypeGeolocation, &seen)
		if seen.Latitude != pos.Latitude {
			t.Fatalf("the console saw %+v", seen)
		}
		update := dispatchOf(t, dispatch.waitFor("location update", func(ev hookEvent) bool {
			d := dispatchOf(t, ev)
			return d.Kind == "location" && d.Emergency.Updates == i+1
		}))
		if update.Location == nil || update.Location.Latitude != pos.Latitude || update.Location.Longitude != pos.Longitude {
			t.Fatalf("update %d: %+v", i+1, update)
		}
	}

	var now emergencyView
	if resp := ts.do(t, "GET", "/v1/sessions/"+call.session.ID+"/emergency", ts.APIKey, nil, &now); resp.StatusCode != 200 ||
		!now.Active || now.Location == nil || now.Location.Latitude != 48.8590 || now.Updates != 2 {
		t.Fatalf("GET emergency: %d %+v", resp.StatusCode, now)
	}

	// Cleared through the API: everyone is told, dispatch too, and locations stop going out.
	if resp := ts.do(t, "POST", "/v1/sessions/"+call.session.ID+"/emergency", ts.APIKey, map[string]any{"active": false}, &now); resp.StatusCode != 200 || now.Active {
		t.Fatalf("clear: %d %+v", resp.StatusCode, now)
	}
	call.customer.expect(wire.TypeEmergency, &flag)
	if flag.Active {
		t.Fatal("the customer was not told the emergency ended")
	}
	dispatch.waitFor("cleared", func(ev hookEvent) bool { return dispatchOf(t, ev).Kind == "cleared" })
	call.customer.send(wire.TypeGeolocation, wire.GeolocationSend{Latitude: 1, Longitude: 1})
	// The customer's socket handles one message after another: once this chat is through,
	// the location before it has been handled in full.
	call.customer.send(wire.TypeChat, wire.ChatSend{Text: "we are outside"})
	call.specialist.expect(wire.TypeChat, nil)
	if resp := ts.do(t, "GET", "/v1/sessions/"+call.session.ID+"/emergency", ts.APIKey, nil, &now); resp.StatusCode != 200 || now.Updates != 2 {
		t.Fatalf("a location after clearing counted: %+v", now)
	}
	dispatch.mu.Lock()
	for _, ev := range dispatch.events {
		if d := dispatchOf(t, ev); d.Kind == "location" && d.Location != nil && d.Location.Latitude == 1 {
			t.Error("a location after clearing went to dispatch")
		}
	}
	dispatch.mu.Unlock()

	t.Run("another organisation cannot flag the session", func(t *testing.T) {
		other := otherOrgKey(t, ts)
		if resp := ts.do(t, "POST", "/v1/sessions/"+call.session.ID+"/emergency", other, map[string]any{"active": true}, nil); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("%d, want 404", resp.StatusCode)
		}
	})
}
