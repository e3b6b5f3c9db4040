package canary

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// stallHalfway writes the first n bytes, says so on stdout, and then blocks for ever: the process is killed
// while the temporary file is half written.
type stallHalfway struct {
	w io.Writer
	n int
}

func (s *stallHalfway) Write(p []byte) (int, error) {
	if len(p) >= s.n {
		_, _ = s.w.Write(p[:s.n])
		os.Stdout.WriteString("halfway\n")
		select {}
	}
	s.n -= len(p)
	return s.w.Write(p)
}

// TestTextfileSurvivesKillMidWrite kills a process (SIGKILL) while it writes the textfile: the file that
// node_exporter reads is the previous one, whole, and the leftover temporary file is not a *.prom file.
func TestTextfileSurvivesKillMidWrite(t *testing.T) {
	if path := os.Getenv("CANARY_CRASH_TEXTFILE"); path != "" {
		// The child: write a new textfile, stalling halfway, until the parent kills us.
		wrapWriter = func(w io.Writer) io.Writer { return &stallHalfway{w: w, n: 200} }
		_, _ = WriteTextfile(path, results(false, time.Unix(1_900_000_000, 0)))
		t.Fatal("the write finished; it should have stalled")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "canary.prom")
	if _, err := WriteTextfile(path, results(true, time.Unix(1_800_000_000, 0))); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)

	cmd := exec.Command(os.Args[0], "-test.run=^TestTextfileSurvivesKillMidWrite$", "-test.count=1")
	cmd.Env = append(os.Environ(), "CANARY_CRASH_TEXTFILE="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	halfway := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "halfway" {
				halfway <- true
				return
			}
		}
		halfway <- false
	}()
	select {
	case ok := <-halfway:
		if !ok {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatal("the child ended without reaching the middle of its write")
		}
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatal("the child did not reach the middle of its write within 60s")
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	after, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(before, after) {
		t.Fatalf("after the crash the textfile is (err %v):\n%s", err, after)
	}
	entries, _ := os.ReadDir(dir)
	tmp := 0
	for _, e := range entries {
		switch {
		case e.Name() == "canary.prom":
		case strings.HasPrefix(e.Name(), ".canary.prom.tmp-") && !strings.HasSuffix(e.Name(), ".prom"):
			tmp++ // the half-written temporary file: node_exporter reads only *.prom
			data, _ := os.ReadFile(filepath.Join(dir, e.Name()))
			if len(data) != 200 {
				t.Errorf("temporary file holds %d bytes, want the 200 written before the crash", len(data))
			}
		default:
			t.Errorf("unexpected file %s", e.Name())
		}
	}
	if tmp != 1 {
		t.Fatalf("%d temporary files, want the one the crash left", tmp)
	}

	// The next write cleans up what a crash left more than an hour ago.
	old := time.Now().Add(-2 * time.Hour)
	for _, e := range entries {
		_ = os.Chtimes(filepath.Join(dir, e.Name()), old, old)
	}
	if _, err := WriteTextfile(path, results(true, time.Unix(1_900_000_000, 0))); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("%d files after the next write, want only canary.prom", len(entries))
	}
}
