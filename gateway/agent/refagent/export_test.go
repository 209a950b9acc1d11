package refagent

// SetJobDone installs a hook called after each job a worker finishes, so tests can
// wait for the asynchronous work. Call it before Run.
func SetJobDone(a *Agent, f func()) { a.jobDone = f }

// Watched returns how many price targets a keeps.
func Watched(a *Agent) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.targets)
}
