package llmagent

// SetJobDone installs a hook called after each job a worker finishes, so tests can
// wait for the asynchronous work. Call it before Run.
func SetJobDone(a *Agent, f func()) { a.jobDone = f }
