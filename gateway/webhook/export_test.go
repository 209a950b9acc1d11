package webhook

// LiveWorkers is the number of worker goroutines that have not returned.
func (d *Dispatcher) LiveWorkers() int64 { return d.live.Load() }

// OnSync sets a hook called after each read of the endpoint list; set it before Run.
func (d *Dispatcher) OnSync(f func()) { d.onSync = f }
