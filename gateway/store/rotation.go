package store

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
)

// rotations closes a gap in Badger's DB.Sync when SyncWrites is off (as here): it syncs
// only the current memtable's write-ahead log (*.mem) and the current value-log file
// (*.vlog). A commit written to a file just before Badger moved on to a new one would
// stay unsynced: an old memtable until it is flushed to a table, an old value-log file
// indefinitely. So after every DB.Sync the syncer lists the directory, and when the set
// of those files changed it fsyncs all of them.
//
// That is enough because Badger writes from one goroutine and creates the next file only
// after the last write to the previous one: once a new file is listed, the old file is
// complete, and the fsync that follows the listing covers it. A rotation the listing
// missed happened after DB.Sync, so DB.Sync covered the old file. New files' directory
// entries Badger syncs itself.
//
// rotations is used by one goroutine at a time: Open, then the syncer's loop.
type rotations struct {
	dir   string
	seen  map[string]bool
	files atomic.Uint64 // files fsynced, for tests
}

// isLog reports whether name is a file DB.Sync may leave unsynced after a rotation.
func isLog(name string) bool {
	return strings.HasSuffix(name, ".mem") || strings.HasSuffix(name, ".vlog")
}

// check fsyncs every log file when the set changed since the last call, or when force.
func (r *rotations) check(force bool) error {
	entries, err := os.ReadDir(r.dir)
	if err != nil {
		return fmt.Errorf("store: list %s: %w", r.dir, err)
	}
	now := make(map[string]bool, len(r.seen))
	for _, e := range entries {
		if e.Type().IsRegular() && isLog(e.Name()) {
			now[e.Name()] = true
		}
	}
	if !force && maps.Equal(now, r.seen) {
		return nil
	}
	for name := range now {
		if err := fsyncFile(filepath.Join(r.dir, name)); err != nil {
			return err
		}
		r.files.Add(1)
	}
	r.seen = now
	return nil
}

// fsyncFile syncs one file; a file Badger deleted meanwhile needs no sync (a flushed
// memtable is in a synced table, a collected value-log file was rewritten).
func fsyncFile(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: open %s for sync: %w", filepath.Base(path), err)
	}
	serr := f.Sync()
	cerr := f.Close()
	if serr != nil {
		return fmt.Errorf("store: fsync %s: %w", filepath.Base(path), serr)
	}
	if cerr != nil {
		return fmt.Errorf("store: close %s: %w", filepath.Base(path), cerr)
	}
	return nil
}
