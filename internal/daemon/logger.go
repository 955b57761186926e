package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// LogHandler writes log records the way keepalived does on the console,
// so the lines users grep for read the same:
//
//	Sun Nov 22 01:02:03 2026: (VI_1) Entering MASTER STATE
//
// Attributes follow as key=value. Without a timestamp (Stamp false) it
// suits syslog and the journal, which add their own.
type LogHandler struct {
	mu    *sync.Mutex
	w     io.Writer
	level slog.Leveler
	stamp bool
	attrs string
	group string
}

// NewLogHandler returns a handler writing to w at the given level.
func NewLogHandler(w io.Writer, level slog.Leveler, stamp bool) *LogHandler {
	return &LogHandler{mu: &sync.Mutex{}, w: w, level: level, stamp: stamp}
}

// Enabled implements slog.Handler.
func (h *LogHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

// Handle implements slog.Handler.
func (h *LogHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	if h.stamp {
		t := r.Time
		if t.IsZero() {
			t = time.Now()
		}
		b.WriteString(t.Format("Mon Jan _2 15:04:05 2006"))
		b.WriteString(": ")
	}
	if r.Level >= slog.LevelWarn {
		b.WriteString(r.Level.String())
		b.WriteString(": ")
	}
	b.WriteString(r.Message)
	b.WriteString(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		writeAttr(&b, h.group, a)
		return true
	})
	b.WriteByte('\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, b.String())
	return err
}

// WithAttrs implements slog.Handler.
func (h *LogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	var b strings.Builder
	for _, a := range as {
		writeAttr(&b, h.group, a)
	}
	n.attrs += b.String()
	return &n
}

// WithGroup implements slog.Handler.
func (h *LogHandler) WithGroup(name string) slog.Handler {
	n := *h
	n.group = h.group + name + "."
	return &n
}

func writeAttr(b *strings.Builder, group string, a slog.Attr) {
	if a.Equal(slog.Attr{}) {
		return
	}
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		for _, ga := range v.Group() {
			writeAttr(b, group+a.Key+".", ga)
		}
		return
	}
	s := v.String()
	if strings.ContainsAny(s, " \t\"=") || s == "" {
		s = fmt.Sprintf("%q", s)
	}
	b.WriteByte(' ')
	b.WriteString(group)
	b.WriteString(a.Key)
	b.WriteByte('=')
	b.WriteString(s)
}
