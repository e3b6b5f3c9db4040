package schemasync_test

import (
	"bytes"
	"os"
	"sync"
)

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o600) }

// logBuffer collects a node's logs while it runs.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
