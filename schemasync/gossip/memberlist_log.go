package gossip

import (
	"bufio"
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/evenkeel/evenkeel/internal/safetext"
)

// memberlistLog turns memberlist's "[LEVEL] memberlist: ..." lines into structured logs. Warnings and errors
// of one kind (the message without its from= address) are logged at most once per logEvery, with the count
// of those suppressed since: a flood of garbage packets is counted, not logged line by line.
type memberlistLog struct {
	log      *slog.Logger
	now      func() time.Time
	problems *prometheus.CounterVec // warnings and errors by level, logged or suppressed; nil: not counted

	mu    sync.Mutex
	kinds map[string]*logKind
}

type logKind struct {
	last       time.Time
	suppressed int
}

const (
	logEvery    = 10 * time.Second
	maxLogKinds = 256
)

func (l *memberlistLog) Write(p []byte) (int, error) {
	sc := bufio.NewScanner(bytes.NewReader(p))
	for sc.Scan() {
		line := sc.Text()
		level := slog.LevelInfo
		for tag, lv := range map[string]slog.Level{"[DEBUG]": slog.LevelDebug, "[INFO]": slog.LevelInfo,
			"[WARN]": slog.LevelWarn, "[ERR]": slog.LevelError} {
			if i := strings.Index(line, tag); i >= 0 {
				level, line = lv, strings.TrimSpace(line[i+len(tag):])
				break
			}
		}
		line = safetext.Escape(safetext.Bound(line, 1024))
		if level < slog.LevelWarn {
			l.log.Log(context.Background(), level, line)
			continue
		}
		if l.problems != nil {
			l.problems.WithLabelValues(strings.ToLower(level.String())).Inc()
		}
		if suppressed, ok := l.allow(line); ok {
			if suppressed > 0 {
				l.log.Log(context.Background(), level, line, "suppressed_since_last", suppressed)
			} else {
				l.log.Log(context.Background(), level, line)
			}
		}
	}
	return len(p), nil
}

// allow decides whether a warning or error line is logged now, and how many of its kind were suppressed.
func (l *memberlistLog) allow(line string) (int, bool) {
	kind := line
	if i := strings.Index(kind, "from="); i >= 0 {
		kind = kind[:i]
	}
	kind = safetext.Bound(kind, 80)
	now := time.Now()
	if l.now != nil {
		now = l.now()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.kinds == nil || len(l.kinds) >= maxLogKinds {
		l.kinds = map[string]*logKind{}
	}
	k := l.kinds[kind]
	if k == nil {
		l.kinds[kind] = &logKind{last: now}
		return 0, true
	}
	if now.Sub(k.last) < logEvery {
		k.suppressed++
		return 0, false
	}
	n := k.suppressed
	k.last, k.suppressed = now, 0
	return n, true
}
