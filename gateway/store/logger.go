package store

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
)

// badgerLogger adapts slog to badger.Logger at warning level and above: Badger's info
// and debug lines (table flushes, compactions, replay progress) are dropped.
type badgerLogger struct{ log *slog.Logger }

func (l badgerLogger) Errorf(format string, args ...any) {
	l.emit(slog.LevelError, format, args)
}

func (l badgerLogger) Warningf(format string, args ...any) {
	l.emit(slog.LevelWarn, format, args)
}

func (badgerLogger) Infof(string, ...any)  {}
func (badgerLogger) Debugf(string, ...any) {}

func (l badgerLogger) emit(level slog.Level, format string, args []any) {
	ctx := context.Background() // Badger's logger interface carries no context
	if !l.log.Enabled(ctx, level) {
		return
	}
	msg := strings.TrimSpace(fmt.Sprintf(format, args...))
	l.log.Log(ctx, level, msg, "source", "badger")
}
