package notify

import (
	"context"
	"strings"
	"testing"
	"time"
)

// linkMessage is a call-back or an invitation: a link sent now, valid for two hours.
func linkMessage(ch Channel, kind Kind, lang, invitedBy string) Message {
	m := testMessage("m1", ch, kind, lang)
	m.Data.End = testStart.Add(2 * time.Hour) // 16:30 in Paris
	m.Data.InvitedBy = invitedBy
	return m
}

func TestCallBackAndInvitationTemplatesInEveryLanguage(t *testing.T) {
	languages := []struct {
		lang string
		// words each kind must use, in the email and the SMS
		callBack, invitation []string
		until                string   // the link's validity, in emails
		appointment          []string // appointment wording neither kind may use
		invitedAnonymously   string   // the SMS opening when nobody is named
	}{
		{"en", []string{"message", "can see you now"}, []string{"Sam Lee", "expert", "video session now"},
			"Monday, 2 March 2026 at 4:30 PM (Europe/Paris)", []string{"appointment", "booked"}, "you are invited"},
		{"fr", []string{"message", "peut vous recevoir dès maintenant"}, []string{"Sam Lee", "expertise", "session vidéo"},
			"lundi 2 mars 2026 à 16:30 (Europe/Paris)", []string{"rendez-vous", "confirmé"}, "nous vous invitons"},
		{"de", []string{"Dank", "kann jetzt mit Ihnen sprechen"}, []string{"Sam Lee", "Expertin oder Experte", "Videogespräch"},
			"Montag, 2. März 2026, 16:30 Uhr (Europe/Paris)", []string{"Videotermin", "gebucht"}, "Sie sind eingeladen"},
		{"es", []string{"mensaje", "puede atenderle ahora"}, []string{"Sam Lee", "experiencia", "sesión de vídeo"},
			"lunes, 2 de marzo de 2026 a las 16:30 (Europe/Paris)", []string{"cita", "confirmada"}, "le invitamos"},
	}
	tpl := NewTemplates()
	for _, l := range languages {
		for _, kind := range []Kind{KindCallBack, KindInvitation} {
			want := l.callBack
			if kind == KindInvitation {
				want = l.invitation
			}
			for _, ch := range Channels() {
				t.Run("the "+l.lang+" "+string(ch)+" "+string(kind)+" says why and carries the link", func(t *testing.T) {
					msg := linkMessage(ch, kind, l.lang, "Sam Lee")
					if err := msg.Validate(); err != nil {
						t.Fatal(err)
					}
					r, err := tpl.Render("org_test", msg)
					if err != nil {
						t.Fatal(err)
					}
					if r.Language != l.lang {
						t.Errorf("rendered in %q", r.Language)
					}
					for _, w := range append([]string{"Example Clinic", msg.Data.Link}, want...) {
						if !strings.Contains(r.Text, w) {
							t.Errorf("text lacks %q:\n%s", w, r.Text)
						}
					}
					for _, w := range l.appointment {
						if strings.Contains(r.Subject+r.Text, w) {
							t.Errorf("a %s speaks of an appointment (%q):\n%s\n%s", kind, w, r.Subject, r.Text)
						}
					}
					if strings.Contains(r.Text+r.Subject, "<no value>") {
						t.Errorf("a field is missing:\n%s\n%s", r.Subject, r.Text)
					}
					switch ch {
					case ChannelEmail:
						if !strings.Contains(r.Text, "Ann Martin") || !strings.Contains(r.Text, l.until) {
							t.Errorf("the email greets nobody or does not say until when the link works (%q):\n%s", l.until, r.Text)
						}
						if r.Subject == "" || !strings.Contains(r.HTML, `<a href="https://assist.example/c/eyJhbGciOiJIUzI1NiJ9.abc?x=1&amp;y=2">`) {
							t.Errorf("subject %q, html:\n%s", r.Subject, r.HTML)
						}
						if kind == KindInvitation && !strings.Contains(r.Subject, "Sam Lee") {
							t.Errorf("the invitation's subject does not say who invites: %q", r.Subject)
						}
					case ChannelSMS:
						if r.Subject != "" || r.HTML != "" || strings.Contains(r.Text, "\n") {
							t.Errorf("an SMS is one line of text: %+v", r)
						}
					}
				})
			}
		}
		t.Run("an "+l.lang+" invitation from nobody in particular still reads as a sentence", func(t *testing.T) {
			for _, ch := range Channels() {
				msg := linkMessage(ch, KindInvitation, l.lang, "")
				msg.Data.End = time.Time{}
				r, err := tpl.Render("org_test", msg)
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(r.Subject+r.Text, "()") || strings.Contains(r.Subject+r.Text, "  ") {
					t.Errorf("%s:\n%s\n%s", ch, r.Subject, r.Text)
				}
				if ch == ChannelSMS && !strings.Contains(r.Text, l.invitedAnonymously) {
					t.Errorf("sms %q lacks %q", r.Text, l.invitedAnonymously)
				}
				if ch == ChannelEmail && !strings.Contains(r.Text, msg.Data.Link) {
					t.Errorf("email without a validity lost its link:\n%s", r.Text)
				}
			}
		})
	}

	t.Run("the English texts read exactly so", func(t *testing.T) {
		r, err := tpl.Render("org_test", linkMessage(ChannelEmail, KindCallBack, "en", ""))
		if err != nil {
			t.Fatal(err)
		}
		wantText := "Hello Ann Martin,\n\nThank you for your video message. A specialist at Example Clinic can see you now.\n\n" +
			"Join the video call with this link, valid until Monday, 2 March 2026 at 4:30 PM (Europe/Paris):\n" +
			"https://assist.example/c/eyJhbGciOiJIUzI1NiJ9.abc?x=1&y=2\n\nKind regards,\nExample Clinic"
		if r.Subject != "Example Clinic is calling you back" || r.Text != wantText {
			t.Errorf("call-back email:\n%q\n%s", r.Subject, r.Text)
		}
		r, err = tpl.Render("org_test", linkMessage(ChannelSMS, KindInvitation, "en", "Sam Lee"))
		if err != nil {
			t.Fatal(err)
		}
		if want := "Example Clinic: Sam Lee invites you to join a video session now, as an expert. Join: https://assist.example/c/eyJhbGciOiJIUzI1NiJ9.abc?x=1&y=2"; r.Text != want {
			t.Errorf("invitation SMS:\n%s\nwant\n%s", r.Text, want)
		}
		r, err = tpl.Render("org_test", linkMessage(ChannelEmail, KindInvitation, "en", "Sam Lee"))
		if err != nil {
			t.Fatal(err)
		}
		if r.Subject != "Sam Lee of Example Clinic invites you to a video call" {
			t.Errorf("invitation subject %q", r.Subject)
		}
	})
}

func TestOrganisationsMayRewordCallBacksAndInvitations(t *testing.T) {
	ctx := context.Background()
	tpl := NewTemplates()
	for _, c := range []struct {
		kind          Kind
		channel       Channel
		subject, body string
		want          string
	}{
		{KindCallBack, ChannelSMS, "", "Rappel {{.OrganizationName}} jusqu'au {{.Until}} : {{.Link}}",
			"Rappel Example Clinic jusqu'au lundi 2 mars 2026 à 16:30 (Europe/Paris) : https://assist.example/c/"},
		{KindInvitation, ChannelEmail, "Expertise demandée par {{.InvitedBy}}", "{{.InvitedBy}} vous attend : {{.Link}}",
			"Sam Lee vous attend : https://assist.example/c/"},
	} {
		t.Run("an organisation's own "+string(c.kind)+" "+string(c.channel)+" template is accepted and used", func(t *testing.T) {
			if err := tpl.SetOrgTemplate(ctx, "org_test", c.kind, c.channel, "fr", c.subject, c.body); err != nil {
				t.Fatal(err)
			}
			if _, body, ok := tpl.OrgTemplate("org_test", c.kind, c.channel, "fr"); !ok || body != c.body {
				t.Fatalf("stored %q %v", body, ok)
			}
			r, err := tpl.Render("org_test", linkMessage(c.channel, c.kind, "fr-BE", "Sam Lee"))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(r.Text, c.want) {
				t.Fatalf("%q, want it to start %q", r.Text, c.want)
			}
			// The other languages keep the built-in wording.
			r, _ = tpl.Render("org_test", linkMessage(c.channel, c.kind, "de", "Sam Lee"))
			if strings.HasPrefix(r.Text, c.want[:10]) {
				t.Fatalf("German uses the French override: %q", r.Text)
			}
		})
	}
	t.Run("the built-in sources are there to start an editor from", func(t *testing.T) {
		for _, kind := range []Kind{KindCallBack, KindInvitation} {
			for _, ch := range Channels() {
				for _, lang := range []string{"en", "fr", "de", "es"} {
					subject, body, ok := BuiltinTemplate(kind, ch, lang)
					if !ok || body == "" || (ch == ChannelEmail) != (subject != "") {
						t.Errorf("%s %s %s: %q %q %v", kind, ch, lang, subject, body, ok)
					}
				}
			}
		}
	})
	t.Run("their template keys are valid bucket keys", func(t *testing.T) {
		for _, key := range []string{"org_test.callback.sms.en", "org_test.invitation.email.fr-ca"} {
			if _, ok := parseTemplateKey(key); !ok {
				t.Errorf("%s is refused", key)
			}
		}
	})
}
