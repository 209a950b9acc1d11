//go:build mosquitto

package main

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
)

// brokerHandler is a slog.Handler that writes each record as one line to the
// broker's log (mosquitto_log_printf): the message, then key=value pairs. The broker
// adds the time and filters by its log_type settings.
type brokerHandler struct {
	attrs string // pre-formatted " key=value" pairs from With
}

var _ slog.Handler = brokerHandler{}

func (brokerHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h brokerHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	b.WriteString(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		appendAttr(&b, a)
		return true
	})
	logLine(r.Level, b.String())
	return nil
}

func (h brokerHandler) WithAttrs(as []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.attrs)
	for _, a := range as {
		appendAttr(&b, a)
	}
	return brokerHandler{attrs: b.String()}
}

// WithGroup is not needed by this plugin's logging; groups are flattened.
func (h brokerHandler) WithGroup(string) slog.Handler { return h }

func appendAttr(b *strings.Builder, a slog.Attr) {
	if a.Equal(slog.Attr{}) {
		return
	}
	v := a.Value.Resolve().String()
	if v == "" || strings.ContainsAny(v, " \"=\\") || strings.ContainsFunc(v, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		v = strconv.Quote(v)
	}
	b.WriteString(" ")
	b.WriteString(a.Key)
	b.WriteString("=")
	b.WriteString(v)
}
