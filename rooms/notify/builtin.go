package notify

import (
	"fmt"
	"time"
)

// The built-in templates, in every language we ship, for every kind and channel. Email bodies
// are put together from a greeting, a lead sentence, an optional link paragraph and a closing,
// so each language reads as one letter; organisations that want other words set their own.

type builtinEmail struct{ subject, lead, link string }

type builtinLanguage struct {
	greeting string // first line of an email
	closing  string // last line before the organisation's name
	email    map[Kind]builtinEmail
	sms      map[Kind]string
}

var builtinLanguages = map[string]builtinLanguage{
	"en": {
		greeting: `{{if .CustomerName}}Hello {{.CustomerName}},{{else}}Hello,{{end}}`,
		closing:  `Kind regards,`,
		email: map[Kind]builtinEmail{
			KindBooked: {
				subject: `Your video appointment with {{.OrganizationName}} is booked`,
				lead:    `Your video appointment with {{.OrganizationName}} is booked for {{.When}}.`,
				link:    `When it is time, join the call here:`,
			},
			KindRescheduled: {
				subject: `Your video appointment with {{.OrganizationName}} has moved`,
				lead:    `Your video appointment with {{.OrganizationName}} has moved to {{.When}}.`,
				link:    `When it is time, join the call here:`,
			},
			KindCancelled: {
				subject: `Your video appointment with {{.OrganizationName}} is cancelled`,
				lead:    `Your video appointment with {{.OrganizationName}} on {{.When}} is cancelled.`,
				link:    `To book a new time:`,
			},
			KindReminder: {
				subject: `Reminder: your video appointment with {{.OrganizationName}}, {{.Date}} at {{.StartTime}}`,
				lead:    `This is a reminder of your video appointment with {{.OrganizationName}} on {{.When}}.`,
				link:    `Join the call here:`,
			},
			KindCallBack: {
				subject: `{{.OrganizationName}} is calling you back`,
				lead:    `Thank you for your video message. A specialist at {{.OrganizationName}} can see you now.`,
				link:    `{{if .Until}}Join the video call with this link, valid until {{.Until}}:{{else}}Join the video call here:{{end}}`,
			},
			KindInvitation: {
				subject: `{{if .InvitedBy}}{{.InvitedBy}} of {{.OrganizationName}}{{else}}{{.OrganizationName}}{{end}} invites you to a video call`,
				lead:    `{{if .InvitedBy}}{{.InvitedBy}} of {{.OrganizationName}}{{else}}{{.OrganizationName}}{{end}} would like you to join a video session now, as an expert.`,
				link:    `{{if .Until}}Your personal link, valid until {{.Until}}:{{else}}Your personal link:{{end}}`,
			},
		},
		sms: map[Kind]string{
			KindBooked:      `{{.OrganizationName}}: your video appointment is booked for {{.When}}.{{if .Link}} Join: {{.Link}}{{end}}`,
			KindRescheduled: `{{.OrganizationName}}: your video appointment has moved to {{.When}}.{{if .Link}} Join: {{.Link}}{{end}}`,
			KindCancelled:   `{{.OrganizationName}}: your video appointment on {{.When}} is cancelled.{{if .Link}} Book a new time: {{.Link}}{{end}}`,
			KindReminder:    `{{.OrganizationName}}: reminder of your video appointment on {{.When}}.{{if .Link}} Join: {{.Link}}{{end}}`,
			KindCallBack:    `{{.OrganizationName}}: thank you for your message. A specialist can see you now.{{if .Link}} Join: {{.Link}}{{end}}`,
			KindInvitation:  `{{.OrganizationName}}: {{if .InvitedBy}}{{.InvitedBy}} invites you{{else}}you are invited{{end}} to join a video session now, as an expert.{{if .Link}} Join: {{.Link}}{{end}}`,
		},
	},
	"fr": {
		greeting: `{{if .CustomerName}}Bonjour {{.CustomerName}},{{else}}Bonjour,{{end}}`,
		closing:  `Cordialement,`,
		email: map[Kind]builtinEmail{
			KindBooked: {
				subject: `Votre rendez-vous vidéo avec {{.OrganizationName}} est confirmé`,
				lead:    `Votre rendez-vous vidéo avec {{.OrganizationName}} est confirmé le {{.When}}.`,
				link:    `Le moment venu, rejoignez l'appel ici :`,
			},
			KindRescheduled: {
				subject: `Votre rendez-vous vidéo avec {{.OrganizationName}} a été déplacé`,
				lead:    `Votre rendez-vous vidéo avec {{.OrganizationName}} a été déplacé au {{.When}}.`,
				link:    `Le moment venu, rejoignez l'appel ici :`,
			},
			KindCancelled: {
				subject: `Votre rendez-vous vidéo avec {{.OrganizationName}} est annulé`,
				lead:    `Votre rendez-vous vidéo avec {{.OrganizationName}} prévu le {{.When}} est annulé.`,
				link:    `Pour choisir un nouveau créneau :`,
			},
			KindReminder: {
				subject: `Rappel : votre rendez-vous vidéo avec {{.OrganizationName}} le {{.Date}} à {{.StartTime}}`,
				lead:    `Nous vous rappelons votre rendez-vous vidéo avec {{.OrganizationName}} le {{.When}}.`,
				link:    `Rejoignez l'appel ici :`,
			},
			KindCallBack: {
				subject: `{{.OrganizationName}} vous rappelle`,
				lead:    `Merci pour votre message vidéo. Un conseiller de {{.OrganizationName}} peut vous recevoir dès maintenant.`,
				link:    `{{if .Until}}Rejoignez l'appel vidéo avec ce lien, valable jusqu'au {{.Until}} :{{else}}Rejoignez l'appel vidéo ici :{{end}}`,
			},
			KindInvitation: {
				subject: `{{if .InvitedBy}}{{.InvitedBy}} ({{.OrganizationName}}){{else}}{{.OrganizationName}}{{end}} vous invite à un appel vidéo`,
				lead:    `{{if .InvitedBy}}{{.InvitedBy}}, de {{.OrganizationName}},{{else}}{{.OrganizationName}}{{end}} vous invite à rejoindre dès maintenant une session vidéo pour y apporter votre expertise.`,
				link:    `{{if .Until}}Votre lien personnel, valable jusqu'au {{.Until}} :{{else}}Votre lien personnel :{{end}}`,
			},
		},
		sms: map[Kind]string{
			KindBooked:      `{{.OrganizationName}} : votre rendez-vous vidéo est confirmé le {{.When}}.{{if .Link}} Lien : {{.Link}}{{end}}`,
			KindRescheduled: `{{.OrganizationName}} : votre rendez-vous vidéo a été déplacé au {{.When}}.{{if .Link}} Lien : {{.Link}}{{end}}`,
			KindCancelled:   `{{.OrganizationName}} : votre rendez-vous vidéo du {{.When}} est annulé.{{if .Link}} Nouveau créneau : {{.Link}}{{end}}`,
			KindReminder:    `{{.OrganizationName}} : rappel de votre rendez-vous vidéo le {{.When}}.{{if .Link}} Lien : {{.Link}}{{end}}`,
			KindCallBack:    `{{.OrganizationName}} : merci pour votre message. Un conseiller peut vous recevoir dès maintenant.{{if .Link}} Lien : {{.Link}}{{end}}`,
			KindInvitation:  `{{.OrganizationName}} : {{if .InvitedBy}}{{.InvitedBy}} vous invite{{else}}nous vous invitons{{end}} à rejoindre dès maintenant une session vidéo pour y apporter votre expertise.{{if .Link}} Lien : {{.Link}}{{end}}`,
		},
	},
	"de": {
		greeting: `{{if .CustomerName}}Guten Tag {{.CustomerName}},{{else}}Guten Tag,{{end}}`,
		closing:  `Freundliche Grüße`,
		email: map[Kind]builtinEmail{
			KindBooked: {
				subject: `Ihr Videotermin bei {{.OrganizationName}} ist gebucht`,
				lead:    `Ihr Videotermin bei {{.OrganizationName}} ist gebucht: {{.When}}.`,
				link:    `Zum Termin nehmen Sie hier am Gespräch teil:`,
			},
			KindRescheduled: {
				subject: `Ihr Videotermin bei {{.OrganizationName}} wurde verschoben`,
				lead:    `Ihr Videotermin bei {{.OrganizationName}} wurde verschoben auf {{.When}}.`,
				link:    `Zum Termin nehmen Sie hier am Gespräch teil:`,
			},
			KindCancelled: {
				subject: `Ihr Videotermin bei {{.OrganizationName}} wurde abgesagt`,
				lead:    `Ihr Videotermin bei {{.OrganizationName}} am {{.When}} wurde abgesagt.`,
				link:    `Einen neuen Termin können Sie hier buchen:`,
			},
			KindReminder: {
				subject: `Erinnerung: Ihr Videotermin bei {{.OrganizationName}} am {{.Date}} um {{.StartTime}} Uhr`,
				lead:    `wir erinnern Sie an Ihren Videotermin bei {{.OrganizationName}} am {{.When}}.`,
				link:    `Hier nehmen Sie am Gespräch teil:`,
			},
			KindCallBack: {
				subject: `{{.OrganizationName}} ruft Sie zurück`,
				lead:    `vielen Dank für Ihre Videonachricht. Eine Fachkraft von {{.OrganizationName}} kann jetzt mit Ihnen sprechen.`,
				link:    `{{if .Until}}Dieser Link zum Videogespräch gilt bis {{.Until}}:{{else}}Hier nehmen Sie am Videogespräch teil:{{end}}`,
			},
			KindInvitation: {
				subject: `{{if .InvitedBy}}{{.InvitedBy}} ({{.OrganizationName}}){{else}}{{.OrganizationName}}{{end}} lädt Sie zu einem Videogespräch ein`,
				lead:    `{{if .InvitedBy}}{{.InvitedBy}} von {{.OrganizationName}}{{else}}{{.OrganizationName}}{{end}} lädt Sie ein, jetzt als Expertin oder Experte an einem Videogespräch teilzunehmen.`,
				link:    `{{if .Until}}Ihr persönlicher Link, gültig bis {{.Until}}:{{else}}Ihr persönlicher Link:{{end}}`,
			},
		},
		sms: map[Kind]string{
			KindBooked:      `{{.OrganizationName}}: Ihr Videotermin ist gebucht: {{.When}}.{{if .Link}} Teilnehmen: {{.Link}}{{end}}`,
			KindRescheduled: `{{.OrganizationName}}: Ihr Videotermin wurde verschoben auf {{.When}}.{{if .Link}} Teilnehmen: {{.Link}}{{end}}`,
			KindCancelled:   `{{.OrganizationName}}: Ihr Videotermin am {{.When}} wurde abgesagt.{{if .Link}} Neuer Termin: {{.Link}}{{end}}`,
			KindReminder:    `{{.OrganizationName}}: Erinnerung an Ihren Videotermin am {{.When}}.{{if .Link}} Teilnehmen: {{.Link}}{{end}}`,
			KindCallBack:    `{{.OrganizationName}}: Danke für Ihre Nachricht. Eine Fachkraft kann jetzt mit Ihnen sprechen.{{if .Link}} Teilnehmen: {{.Link}}{{end}}`,
			KindInvitation:  `{{.OrganizationName}}: {{if .InvitedBy}}{{.InvitedBy}} lädt Sie ein{{else}}Sie sind eingeladen{{end}}, jetzt als Expertin oder Experte an einem Videogespräch teilzunehmen.{{if .Link}} Teilnehmen: {{.Link}}{{end}}`,
		},
	},
	"es": {
		greeting: `{{if .CustomerName}}Hola, {{.CustomerName}}:{{else}}Hola:{{end}}`,
		closing:  `Atentamente,`,
		email: map[Kind]builtinEmail{
			KindBooked: {
				subject: `Su cita por vídeo con {{.OrganizationName}} está confirmada`,
				lead:    `Su cita por vídeo con {{.OrganizationName}} está confirmada para el {{.When}}.`,
				link:    `Cuando llegue la hora, únase a la llamada aquí:`,
			},
			KindRescheduled: {
				subject: `Su cita por vídeo con {{.OrganizationName}} ha cambiado de fecha`,
				lead:    `Su cita por vídeo con {{.OrganizationName}} se ha trasladado al {{.When}}.`,
				link:    `Cuando llegue la hora, únase a la llamada aquí:`,
			},
			KindCancelled: {
				subject: `Su cita por vídeo con {{.OrganizationName}} ha sido cancelada`,
				lead:    `Su cita por vídeo con {{.OrganizationName}} del {{.When}} ha sido cancelada.`,
				link:    `Para reservar una nueva cita:`,
			},
			KindReminder: {
				subject: `Recordatorio: su cita por vídeo con {{.OrganizationName}} el {{.Date}} a las {{.StartTime}}`,
				lead:    `Le recordamos su cita por vídeo con {{.OrganizationName}} el {{.When}}.`,
				link:    `Únase a la llamada aquí:`,
			},
			KindCallBack: {
				subject: `{{.OrganizationName}} le devuelve la llamada`,
				lead:    `Gracias por su mensaje de vídeo. Un especialista de {{.OrganizationName}} puede atenderle ahora.`,
				link:    `{{if .Until}}Únase a la videollamada con este enlace, válido hasta el {{.Until}}:{{else}}Únase a la videollamada aquí:{{end}}`,
			},
			KindInvitation: {
				subject: `{{if .InvitedBy}}{{.InvitedBy}} ({{.OrganizationName}}){{else}}{{.OrganizationName}}{{end}} le invita a una videollamada`,
				lead:    `{{if .InvitedBy}}{{.InvitedBy}}, de {{.OrganizationName}},{{else}}{{.OrganizationName}}{{end}} le invita a unirse ahora a una sesión de vídeo para aportar su experiencia.`,
				link:    `{{if .Until}}Su enlace personal, válido hasta el {{.Until}}:{{else}}Su enlace personal:{{end}}`,
			},
		},
		sms: map[Kind]string{
			KindBooked:      `{{.OrganizationName}}: su cita por vídeo está confirmada para el {{.When}}.{{if .Link}} Enlace: {{.Link}}{{end}}`,
			KindRescheduled: `{{.OrganizationName}}: su cita por vídeo se ha trasladado al {{.When}}.{{if .Link}} Enlace: {{.Link}}{{end}}`,
			KindCancelled:   `{{.OrganizationName}}: su cita por vídeo del {{.When}} ha sido cancelada.{{if .Link}} Nueva cita: {{.Link}}{{end}}`,
			KindReminder:    `{{.OrganizationName}}: recordatorio de su cita por vídeo el {{.When}}.{{if .Link}} Enlace: {{.Link}}{{end}}`,
			KindCallBack:    `{{.OrganizationName}}: gracias por su mensaje. Un especialista puede atenderle ahora.{{if .Link}} Enlace: {{.Link}}{{end}}`,
			KindInvitation:  `{{.OrganizationName}}: {{if .InvitedBy}}{{.InvitedBy}} le invita{{else}}le invitamos{{end}} a unirse ahora a una sesión de vídeo para aportar su experiencia.{{if .Link}} Enlace: {{.Link}}{{end}}`,
		},
	},
}

// builtinSource is the source of a built-in template: the subject ("" for SMS) and the body.
func builtinSource(lang string, kind Kind, channel Channel) (subject, body string, ok bool) {
	l, ok := builtinLanguages[lang]
	if !ok {
		return "", "", false
	}
	if channel == ChannelSMS {
		body, ok = l.sms[kind]
		return "", body, ok
	}
	e, ok := l.email[kind]
	if !ok {
		return "", "", false
	}
	body = l.greeting + "\n\n" + e.lead + "\n\n" +
		"{{if .Link}}" + e.link + "\n{{.Link}}\n\n{{end}}" +
		l.closing + "\n{{.OrganizationName}}\n"
	return e.subject, body, true
}

// dateStyle writes dates and times the way a language does. Languages without one use English.
type dateStyle struct {
	weekdays [7]string // Sunday first, as time.Weekday
	months   [12]string
	clock    string                                       // time.Format layout for a time of day
	date     func(weekday, month string, d, y int) string // "Monday, 3 March 2026"
	span     func(date, start, end, zone string) string   // end may be ""
}

var dateStyles = map[string]dateStyle{
	"en": {
		weekdays: [7]string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"},
		months: [12]string{"January", "February", "March", "April", "May", "June", "July", "August",
			"September", "October", "November", "December"},
		clock: "3:04 PM",
		date:  func(w, m string, d, y int) string { return fmt.Sprintf("%s, %d %s %d", w, d, m, y) },
		span: func(date, start, end, zone string) string {
			if end == "" {
				return fmt.Sprintf("%s at %s (%s)", date, start, zone)
			}
			return fmt.Sprintf("%s, %s to %s (%s)", date, start, end, zone)
		},
	},
	"fr": {
		weekdays: [7]string{"dimanche", "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi"},
		months: [12]string{"janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
			"septembre", "octobre", "novembre", "décembre"},
		clock: "15:04",
		date:  func(w, m string, d, y int) string { return fmt.Sprintf("%s %d %s %d", w, d, m, y) },
		span: func(date, start, end, zone string) string {
			if end == "" {
				return fmt.Sprintf("%s à %s (%s)", date, start, zone)
			}
			return fmt.Sprintf("%s, de %s à %s (%s)", date, start, end, zone)
		},
	},
	"de": {
		weekdays: [7]string{"Sonntag", "Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag"},
		months: [12]string{"Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August",
			"September", "Oktober", "November", "Dezember"},
		clock: "15:04",
		date:  func(w, m string, d, y int) string { return fmt.Sprintf("%s, %d. %s %d", w, d, m, y) },
		span: func(date, start, end, zone string) string {
			if end == "" {
				return fmt.Sprintf("%s, %s Uhr (%s)", date, start, zone)
			}
			return fmt.Sprintf("%s, %s–%s Uhr (%s)", date, start, end, zone)
		},
	},
	"es": {
		weekdays: [7]string{"domingo", "lunes", "martes", "miércoles", "jueves", "viernes", "sábado"},
		months: [12]string{"enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto",
			"septiembre", "octubre", "noviembre", "diciembre"},
		clock: "15:04",
		date:  func(w, m string, d, y int) string { return fmt.Sprintf("%s, %d de %s de %d", w, d, m, y) },
		span: func(date, start, end, zone string) string {
			if end == "" {
				return fmt.Sprintf("%s a las %s (%s)", date, start, zone)
			}
			return fmt.Sprintf("%s, de %s a %s (%s)", date, start, end, zone)
		},
	},
}

// templateView is what a template sees: the message's TemplateData with the times moved into the
// appointment's time zone, and ready-made phrases in the template's language.
type templateView struct {
	CustomerName     string
	OrganizationName string
	Link             string
	TimeZone         string    // the IANA name, "UTC" when none was given
	Start, End       time.Time // in TimeZone; End may be zero
	Date             string    // "Monday, 3 March 2026"
	StartTime        string    // "2:30 PM" or "14:30"
	EndTime          string    // "" when End is zero
	When             string    // date, times and zone in one phrase
	// Until is End as one phrase (date, time and zone), "" when End is zero: how long a link sent
	// now (a call-back, an expert invitation) stays valid.
	Until     string
	InvitedBy string // who invites an expert, "" when not known
}

func newTemplateView(d TemplateData, lang string) (templateView, error) {
	zone := d.TimeZone
	if zone == "" {
		zone = "UTC"
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return templateView{}, fmt.Errorf("time zone %q: %w", zone, err)
	}
	style, ok := dateStyles[lang]
	if !ok {
		style = dateStyles["en"]
	}
	v := templateView{
		CustomerName:     d.CustomerName,
		OrganizationName: d.OrganizationName,
		Link:             d.Link,
		InvitedBy:        d.InvitedBy,
		TimeZone:         zone,
		Start:            d.Start.In(loc),
	}
	v.Date = style.date(style.weekdays[v.Start.Weekday()], style.months[v.Start.Month()-1], v.Start.Day(), v.Start.Year())
	v.StartTime = v.Start.Format(style.clock)
	if !d.End.IsZero() {
		v.End = d.End.In(loc)
		v.EndTime = v.End.Format(style.clock)
		endDate := style.date(style.weekdays[v.End.Weekday()], style.months[v.End.Month()-1], v.End.Day(), v.End.Year())
		v.Until = style.span(endDate, v.EndTime, "", zone)
	}
	v.When = style.span(v.Date, v.StartTime, v.EndTime, zone)
	return v, nil
}
