package media

// Stats reports the counters of a session's room on this node, without creating the room;
// nil when this node has no room for the session.
func (s *SFU) Stats(sessionID string) []ParticipantStats {
	s.mu.Lock()
	r := s.rooms[sessionID]
	s.mu.Unlock()
	if r == nil {
		return nil
	}
	return r.Stats()
}
