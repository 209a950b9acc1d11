package store

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/earshot/earshot/authz/kv"
)

func touch(t *testing.T, dir, name string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestRotationsSyncWhenLogFilesChange(t *testing.T) {
	dir := t.TempDir()
	touch(t, dir, "00001.mem")
	touch(t, dir, "000001.vlog")
	touch(t, dir, "000001.sst") // tables are synced by Badger: never counted
	touch(t, dir, "MANIFEST")
	r := &rotations{dir: dir}

	steps := []struct {
		name   string
		change func()
		force  bool
		want   uint64 // files synced by this step
	}{
		{"forced at open", func() {}, true, 2},
		{"nothing changed", func() {}, false, 0},
		{"a table appeared", func() { touch(t, dir, "000002.sst") }, false, 0},
		{"memtable rotated", func() { touch(t, dir, "00002.mem") }, false, 3},
		{"old memtable flushed", func() { _ = os.Remove(filepath.Join(dir, "00001.mem")) }, false, 2},
		{"value log rotated", func() { touch(t, dir, "000002.vlog") }, false, 3},
		{"steady", func() {}, false, 0},
	}
	for _, st := range steps {
		st.change()
		before := r.files.Load()
		if err := r.check(st.force); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := r.files.Load() - before; got != st.want {
			t.Errorf("%s: synced %d files, want %d", st.name, got, st.want)
		}
	}
}

// With a 1 MiB memtable a few MiB of writes rotate it several times; each rotation
// must make the syncer fsync the log files again.
func TestRotationsFollowBadger(t *testing.T) {
	db, err := Open(Config{
		Dir:          t.TempDir(),
		Logger:       slog.New(slog.DiscardHandler),
		MemTableSize: minMemTableSize,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	}()
	atOpen := db.rot.files.Load()
	value := make([]byte, 512) // below the 1 KiB value threshold: into the memtable
	for i := range 64 {
		err := db.Update(context.Background(), func(tx kv.Txn) error {
			for j := range 100 {
				if err := tx.Set(fmt.Appendf(nil, "out/d/%020d", i*100+j), value); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := db.rot.files.Load(); got <= atOpen {
		t.Fatalf("files synced after ~3 MiB through a 1 MiB memtable: %d, at open %d", got, atOpen)
	}
}
