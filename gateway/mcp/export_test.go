package mcp

// Watching counts the agents whose log is watched and the subscribed sessions a
// goroutine waits for.
func (s *Server) Watching() (agents, sessions int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.watchers), len(s.waiting)
}
