package rooms

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Invitations bring more people into a live session: a colleague of the organisation (who
// joins from their console), an outside expert (who joins by a one-off link with the expert
// role), or a colleague the session is handed over to. They live in the KV bucket
// assist_invitations under "{org}.{session}.{invitation}", so one session's invitations and
// one organisation's are each a key filter away, on any node.

const bucketInvitations = "assist_invitations"

// InvitationKind is what an invitation is for.
type InvitationKind string

// Invitation kinds.
const (
	InviteColleague InvitationKind = "colleague"
	InviteExpert    InvitationKind = "expert"
	InviteHandover  InvitationKind = "handover"
)

// InvitationState is where an invitation is in its life.
type InvitationState string

// Invitation states. An invitation is pending until the invited person joins (accepted), a
// specialist revokes it, or it expires (ExpiresAt; the state is not rewritten).
const (
	InvitationPending  InvitationState = "pending"
	InvitationAccepted InvitationState = "accepted"
	InvitationRevoked  InvitationState = "revoked"
)

// Invitation is one person asked into one session.
type Invitation struct {
	ID        string          `json:"id"`
	OrgID     string          `json:"org_id"`
	SessionID string          `json:"session_id"`
	Kind      InvitationKind  `json:"kind"`
	State     InvitationState `json:"state"`
	// The colleague invited, or handed the session (colleague and handover).
	SpecialistID string `json:"specialist_id,omitempty"`
	// The expert (expert): a name to show and where the link was sent, if anywhere.
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
	Phone string `json:"phone,omitempty"`
	// TokenID is the expert link's jti: the link is honoured only while this invitation is.
	TokenID string `json:"token_id,omitempty"`
	// Who invited: a specialist's id, or "api".
	InvitedBy     string     `json:"invited_by"`
	InvitedByName string     `json:"invited_by_name,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
	ExpiresAt     time.Time  `json:"expires_at"`
	AcceptedAt    *time.Time `json:"accepted_at,omitempty"`
	RevokedAt     *time.Time `json:"revoked_at,omitempty"`
	// ParticipantID is who the invited person became in the session, once they joined.
	ParticipantID string `json:"participant_id,omitempty"`
}

// Open reports whether the invitation can still be used at now.
func (inv *Invitation) Open(now time.Time) bool {
	return inv.State != InvitationRevoked && now.Before(inv.ExpiresAt)
}

// Errors about invitations.
var (
	ErrInvitationRevoked = errors.New("the invitation was withdrawn")
	ErrInvitationExpired = errors.New("the invitation has expired")
)

func invitationKey(orgID, sessionID, id string) string { return orgID + "." + sessionID + "." + id }

// NewInvitationID names an invitation.
func NewInvitationID() string { return newID("inv_") }

// CreateInvitation stores a new pending invitation; the caller fills who and what.
func (s *Store) CreateInvitation(ctx context.Context, inv Invitation) (*Invitation, error) {
	if !ValidID(inv.OrgID) || !ValidID(inv.SessionID) {
		return nil, ErrNotFound
	}
	if inv.ID == "" {
		inv.ID = NewInvitationID()
	}
	inv.State = InvitationPending
	if inv.CreatedAt.IsZero() {
		inv.CreatedAt = s.now().UTC()
	}
	if err := createJSON(ctx, s.invitations, invitationKey(inv.OrgID, inv.SessionID, inv.ID), inv); err != nil {
		return nil, err
	}
	return &inv, nil
}

// Invitation reads one invitation of a session.
func (s *Store) Invitation(ctx context.Context, orgID, sessionID, id string) (*Invitation, error) {
	if !ValidID(orgID) || !ValidID(sessionID) || !ValidID(id) {
		return nil, ErrNotFound
	}
	inv, _, err := getJSON[Invitation](ctx, s.invitations, invitationKey(orgID, sessionID, id))
	return inv, err
}

// SessionInvitations lists a session's invitations, oldest first.
func (s *Store) SessionInvitations(ctx context.Context, orgID, sessionID string) ([]Invitation, error) {
	if !ValidID(orgID) || !ValidID(sessionID) {
		return nil, ErrNotFound
	}
	return s.listInvitations(ctx, orgID+"."+sessionID+".*")
}

// SpecialistInvitations lists the open invitations addressed to one specialist of an
// organisation (colleague and handover), oldest first.
func (s *Store) SpecialistInvitations(ctx context.Context, orgID, specialistID string) ([]Invitation, error) {
	if !ValidID(orgID) {
		return nil, ErrNotFound
	}
	all, err := s.listInvitations(ctx, orgID+".*.*")
	if err != nil {
		return nil, err
	}
	now := s.now()
	out := all[:0]
	for _, inv := range all {
		if inv.SpecialistID == specialistID && inv.State == InvitationPending && inv.Open(now) {
			out = append(out, inv)
		}
	}
	return out, nil
}

func (s *Store) listInvitations(ctx context.Context, filter string) ([]Invitation, error) {
	lister, err := s.invitations.ListKeysFiltered(ctx, filter)
	if err != nil {
		return nil, err
	}
	var out []Invitation
	for key := range lister.Keys() {
		inv, _, err := getJSON[Invitation](ctx, s.invitations, key)
		if errors.Is(err, ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			_ = lister.Stop()
			return nil, err
		}
		out = append(out, *inv)
	}
	// Ids sort by creation time.
	slices.SortFunc(out, func(a, b Invitation) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// RevokeInvitation withdraws an invitation. An expert already in the call is taken out of it
// (their participant is turned away, so the same link cannot bring them back).
func (s *Store) RevokeInvitation(ctx context.Context, orgID, sessionID, id, by string) (*Invitation, error) {
	if !ValidID(orgID) || !ValidID(sessionID) || !ValidID(id) {
		return nil, ErrNotFound
	}
	inv, err := casUpdate(ctx, s.invitations, invitationKey(orgID, sessionID, id), func(inv *Invitation) error {
		if inv.State == InvitationRevoked {
			return nil
		}
		now := s.now().UTC()
		inv.State, inv.RevokedAt = InvitationRevoked, &now
		return nil
	})
	if err != nil {
		return nil, err
	}
	if inv.Kind == InviteExpert && inv.TokenID != "" {
		if err := s.removeByKey(ctx, orgID, sessionID, "link:"+inv.TokenID, "the invitation was withdrawn", by); err != nil &&
			!errors.Is(err, ErrNotFound) && !errors.Is(err, ErrEnded) {
			return inv, err
		}
	}
	return inv, nil
}

// removeByKey turns away the participant behind a key, wherever they are in the session.
func (s *Store) removeByKey(ctx context.Context, orgID, sessionID, key, reason, by string) error {
	var pid string
	_, err := s.update(ctx, orgID, sessionID, func(sess *Session) error {
		if sess.State == SessionEnded {
			return ErrEnded
		}
		for i := range sess.Participants {
			p := &sess.Participants[i]
			if p.Key != key || !p.Present() {
				continue
			}
			now := s.now().UTC()
			p.State, p.DenyReason, p.LeftAt = ParticipantDenied, reason, &now
			p.ResumeState, p.ReconnectBy = "", nil
			pid = p.ID
			return nil
		}
		return ErrNotFound
	})
	if err == nil {
		s.publish(ctx, Event{Kind: EventDenied, OrgID: orgID, SessionID: sessionID, ParticipantID: pid, Actor: by, Reason: reason})
	}
	return err
}

// CheckExpertLink says whether an expert link (by its jti) may be used in a session now.
func (s *Store) CheckExpertLink(ctx context.Context, orgID, sessionID, tokenID string) (*Invitation, error) {
	list, err := s.SessionInvitations(ctx, orgID, sessionID)
	if err != nil {
		return nil, err
	}
	for i := range list {
		inv := &list[i]
		if inv.Kind != InviteExpert || inv.TokenID != tokenID {
			continue
		}
		switch {
		case inv.State == InvitationRevoked:
			return inv, ErrInvitationRevoked
		case !inv.Open(s.now()):
			return inv, ErrInvitationExpired
		}
		return inv, nil
	}
	return nil, ErrNotFound
}

// AcceptInvitations marks the pending invitations that a person's joining answers: the
// expert link's (by its jti) or the specialist's (colleague and handover). It returns those
// it accepted.
func (s *Store) AcceptInvitations(ctx context.Context, orgID, sessionID, specialistID, tokenID, participantID string) ([]Invitation, error) {
	list, err := s.SessionInvitations(ctx, orgID, sessionID)
	if err != nil {
		return nil, err
	}
	var out []Invitation
	now := s.now()
	for _, inv := range list {
		mine := specialistID != "" && inv.SpecialistID == specialistID && inv.Kind != InviteExpert ||
			tokenID != "" && inv.TokenID == tokenID
		if !mine || inv.State != InvitationPending || !inv.Open(now) {
			continue
		}
		got, err := casUpdate(ctx, s.invitations, invitationKey(orgID, sessionID, inv.ID), func(inv *Invitation) error {
			if inv.State != InvitationPending {
				return fmt.Errorf("%w: invitation is %s", ErrInvalidState, inv.State)
			}
			at := now.UTC()
			inv.State, inv.AcceptedAt, inv.ParticipantID = InvitationAccepted, &at, participantID
			return nil
		})
		if errors.Is(err, ErrInvalidState) {
			continue // answered meanwhile
		}
		if err != nil {
			return out, err
		}
		out = append(out, *got)
	}
	return out, nil
}

// HandOver makes a colleague the session's specialist: it records them on the session and
// invites them (kind handover). The specialist handing over leaves by themselves; the
// customer's place and connection are untouched.
func (s *Store) HandOver(ctx context.Context, orgID, sessionID string, inv Invitation) (*Session, *Invitation, error) {
	sess, err := s.update(ctx, orgID, sessionID, func(sess *Session) error {
		if sess.State == SessionEnded {
			return ErrEnded
		}
		// The colleague is the session's specialist from now on: also its assignee, so that
		// whatever follows assignments (their queue first) follows the handover.
		at := s.now().UTC()
		sess.HandedOverTo = inv.SpecialistID
		sess.AssignedTo, sess.AssignedBy, sess.AssignedAt = inv.SpecialistID, inv.InvitedBy, &at
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	inv.Kind, inv.OrgID, inv.SessionID = InviteHandover, orgID, sessionID
	created, err := s.CreateInvitation(ctx, inv)
	if err != nil {
		return sess, nil, err
	}
	s.publish(ctx, Event{Kind: EventHandedOver, OrgID: orgID, SessionID: sessionID, Actor: inv.InvitedBy, Reason: inv.SpecialistID})
	return sess, created, nil
}

// EventHandedOver: the session was handed over to another specialist (Event.Reason names them).
const EventHandedOver EventKind = "handed_over"
