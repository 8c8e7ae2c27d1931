package main

import (
	"bytes"
	"encoding/xml"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kdefer/kdefer/internal/golden"
)

// checkPNG fails t unless file is a decodable PNG of a plausible size.
func checkPNG(t *testing.T, file string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: not a PNG: %v", file, err)
	}
	if cfg.Width < 100 || cfg.Height < 100 {
		t.Errorf("%s: %dx%d", file, cfg.Width, cfg.Height)
	}
	if _, err := png.Decode(bytes.NewReader(data)); err != nil {
		t.Errorf("%s: %v", file, err)
	}
}

// svgText parses file as XML (failing t if it is not well formed) and
// returns the text of its <text> elements.
func svgText(t *testing.T, file string) string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(data))
	var text strings.Builder
	inText, root := false, ""
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: not well-formed XML: %v", file, err)
		}
		switch tk := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = tk.Name.Local
			}
			inText = tk.Name.Local == "text"
		case xml.CharData:
			if inText {
				text.Write(tk)
				text.WriteByte('\n')
			}
		case xml.EndElement:
			inText = false
		}
	}
	if root != "svg" {
		t.Fatalf("%s: root element %q, want svg", file, root)
	}
	return text.String()
}

func TestPlotSleepsDrawsAHistogramPerAPI(t *testing.T) {
	base := filepath.Join(t.TempDir(), "sleeps")
	_, errs, code := kdefer(t, "plot", "sleeps", "-o", base, "--count", "2", "--request", "1ms")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	checkPNG(t, base+".png")
	text := svgText(t, base+".svg")
	for _, api := range []string{"msleep:", "msleep_interruptible:", "schedule_timeout_uninterruptible:", "usleep_range:",
		"fsleep:", "mdelay (busy):", "time.Sleep (Go):"} {
		if !strings.Contains(text, api+" asked for 1ms at HZ=250 (n=2)") {
			t.Errorf("no %s series in the SVG:\n%s", api, text)
		}
	}
}

func TestPlotLatenessAndTimelineOfARecording(t *testing.T) {
	file := recordTimerSimple(t)
	dir := t.TempDir()
	for _, args := range [][]string{
		{"plot", "lateness", "-o", filepath.Join(dir, "l.png"), file},
		{"plot", "lateness", "-o", filepath.Join(dir, "l.svg"), file},
		{"plot", "timeline", "-o", filepath.Join(dir, "t.png"), file},
		{"plot", "timeline", "-o", filepath.Join(dir, "t.svg"), file},
	} {
		if _, errs, code := kdefer(t, args...); code != 0 {
			t.Fatalf("%q: exit %d, stderr %q", args, code, errs)
		}
	}
	checkPNG(t, filepath.Join(dir, "l.png"))
	checkPNG(t, filepath.Join(dir, "t.png"))
	// timer_simple's timer is 105 jiffies ahead: wheel level 1, 7 jiffies late each time.
	if text := svgText(t, filepath.Join(dir, "l.svg")); !strings.Contains(text, "wheel level 1 (buckets of 8 jiffies): lateness (n=3)") {
		t.Errorf("lateness SVG lacks the level-1 series:\n%s", text)
	}
	text := svgText(t, filepath.Join(dir, "t.svg"))
	for _, want := range []string{"CPU0", "CPU1", "softirq", "timer", "kdefer run timer_simple"} {
		if !strings.Contains(text, want) {
			t.Errorf("timeline SVG lacks %q:\n%s", want, text)
		}
	}
}

func TestPlotRefusesBadNamesAndEmptyRecordings(t *testing.T) {
	file := recordTimerSimple(t, "-e", "sched")
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"plot"}, 2},
		{[]string{"plot", "pie"}, 2},
		{[]string{"plot", "lateness", "-o", filepath.Join(dir, "x.pdf"), file}, 2},
		{[]string{"plot", "sleeps", "--count", "0"}, 2},
		{[]string{"plot", "sleeps", "--request", "1500us"}, 2},
		{[]string{"plot", "lateness", "-o", filepath.Join(dir, "x.png"), file}, 1}, // no timer events recorded
		{[]string{"plot", "timeline", "-o", filepath.Join(dir, "y.png"), file}, 1},
	} {
		if _, errs, code := kdefer(t, tc.args...); code != tc.code {
			t.Errorf("%q: exit %d, want %d (stderr %q)", tc.args, code, tc.code, errs)
		}
	}
}

// readmePicture are the README's commands for its picture, run from the
// repository root.
var readmePicture = []string{
	"kdefer trace record -o docs/delays_sleeps.kdt -- run delays_sleeps --virtual --cpus 2",
	"kdefer plot lateness -o docs/lateness.png docs/delays_sleeps.kdt",
}

// TestREADMEPictureIsMadeByTheDocumentedCommands runs the README's
// commands and compares the picture with the committed one (-rewrite
// replaces it).
func TestREADMEPictureIsMadeByTheDocumentedCommands(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, line := range readmePicture {
		if !bytes.Contains(readme, []byte(line)) {
			t.Errorf("README does not show %q", line)
		}
		args := strings.Fields(strings.ReplaceAll(line, "docs/", dir+"/"))[1:]
		if _, errs, code := kdefer(t, args...); code != 0 {
			t.Fatalf("%s: exit %d, stderr %q", line, code, errs)
		}
	}
	got, err := os.ReadFile(filepath.Join(dir, "lateness.png"))
	if err != nil {
		t.Fatal(err)
	}
	if golden.Rewriting() {
		if err := os.WriteFile("../../docs/lateness.png", got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile("../../docs/lateness.png")
	if err != nil {
		t.Fatalf("%v (go test -run TestREADMEPicture -args -rewrite makes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Error("docs/lateness.png is not what the README's commands make (go test -run TestREADMEPicture -args -rewrite)")
	}
}
