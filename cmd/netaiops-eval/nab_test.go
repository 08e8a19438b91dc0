package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/netaiops/netaiops/agent/detect"
)

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestNABWritesResultsInNABLayout(t *testing.T) {
	data, out := t.TempDir(), t.TempDir()
	var in strings.Builder
	in.WriteString("timestamp,value\n")
	for i := range 400 {
		v := "10"
		if i == 300 {
			v = "1e3"
		}
		m := i * 5 // NAB's cadence: the warm-up is 150 steps of 5 minutes
		fmt.Fprintf(&in, "2014-04-%02d %02d:%02d:00,%s\n", 1+m/1440, m/60%24, m%60, v)
	}
	writeFile(t, filepath.Join(data, "realKnownCause", "cpu.csv"), in.String())
	var stdout strings.Builder
	if err := run([]string{"nab", "--data", data, "--out", out}, &stdout, &stdout); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, "netaiops", "realKnownCause", "netaiops_cpu.csv"))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	want := strings.Split(strings.TrimSuffix(in.String(), "\n"), "\n")
	if len(got) != len(want) || got[0] != "timestamp,value,anomaly_score" {
		t.Fatalf("got %d lines, header %q; want %d lines and the NAB header", len(got), got[0], len(want))
	}
	top, topAt := -1.0, 0
	for i := 1; i < len(got); i++ {
		cut := strings.LastIndexByte(got[i], ',')
		if got[i][:cut] != want[i] {
			t.Fatalf("line %d: row %q, want the input row %q kept as is", i+1, got[i][:cut], want[i])
		}
		s, err := strconv.ParseFloat(got[i][cut+1:], 64)
		if err != nil || s < 0 || s > 1 {
			t.Fatalf("line %d: score %q not in [0,1]", i+1, got[i][cut+1:])
		}
		if s > top {
			top, topAt = s, i-1
		}
	}
	if topAt != 300 {
		t.Errorf("highest score at row %d, want the spike at row 300", topAt)
	}
}

func TestNABBadCSVNamesFileAndLine(t *testing.T) {
	cases := []struct{ name, text, want string }{
		{"header", "time,value\n", "line 1: header"},
		{"fields", "timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 00:05:00,1,2\n", "line 3: want 2 fields"},
		{"timestamp", "timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01T00:05,1\n", "line 3: timestamp \"2014-04-01T00:05\""},
		{"value", "timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 00:05:00,x\n", "line 3: value"},
		{"empty", "", "line 1: empty file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := t.TempDir()
			file := filepath.Join(data, "cat", c.name+".csv")
			writeFile(t, file, c.text)
			_, err := runNAB(data, t.TempDir())
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q, want it to name %s and say %q", err, file, c.want)
			}
		})
	}
}

// TestNABTimestampBackwards: a row dated before the previous one (NAB's
// machine_temperature_system_failure.csv has one) is handled as the agent
// handles a poll older than the last: not scored (score 0), and the rows
// after it are scored as usual; it is not a fatal error.
func TestNABTimestampBackwards(t *testing.T) {
	var in strings.Builder
	in.WriteString("timestamp,value\n")
	for i := range 400 {
		min := i * 5
		v := "10"
		switch i {
		case 200:
			min = 199*5 - 60 // an hour back
		case 300:
			v = "1e3"
		}
		fmt.Fprintf(&in, "2014-04-%02d %02d:%02d:00,%s\n", 1+min/1440, min/60%24, min%60, v)
	}
	var out strings.Builder
	fr, err := score(strings.NewReader(in.String()), &out)
	if err != nil {
		t.Fatalf("a timestamp going backwards: %v", err)
	}
	if len(fr.ts) != 400 {
		t.Fatalf("%d rows scored, want 400", len(fr.ts))
	}
	if fr.scores[200] != 0 {
		t.Errorf("the row dated back scored %v, want 0 (not scored, as the agent ignores an older poll)", fr.scores[200])
	}
	if fr.scores[300] < 0.5 {
		t.Errorf("the spike after it scored %v, want an alarm (>= 0.5)", fr.scores[300])
	}
}

// TestNABScoresAndThresholds: with labels, the eval prints the in-sample,
// cross-validated and shipped-threshold scores and writes thresholds.json
// holding the shipped threshold, in the shape nabscore reads.
func TestNABScoresAndThresholds(t *testing.T) {
	data, out := t.TempDir(), t.TempDir()
	labels := `{`
	for _, cat := range []string{"catA", "catB"} {
		for f := range 2 {
			var in strings.Builder
			in.WriteString("timestamp,value\n")
			spike := 250 // the same in every file: every fold fits the same threshold
			for i := range 400 {
				v := fmt.Sprint(10 + i%3)
				if i == spike {
					v = "1e3"
				}
				fmt.Fprintf(&in, "2014-04-%02d %02d:%02d:00,%s\n", 1+i*5/1440, i*5/60%24, i*5%60, v)
			}
			rel := fmt.Sprintf("%s/f%d.csv", cat, f)
			writeFile(t, filepath.Join(data, rel), in.String())
			if len(labels) > 1 {
				labels += ","
			}
			at := func(i int) string {
				return fmt.Sprintf("2014-04-%02d %02d:%02d:00.000000", 1+i*5/1440, i*5/60%24, i*5%60)
			}
			labels += fmt.Sprintf("%q: [[%q, %q]]", rel, at(spike-10), at(spike+10))
		}
	}
	labels += "}"
	lf := filepath.Join(t.TempDir(), "combined_windows.json")
	writeFile(t, lf, labels)
	var stdout strings.Builder
	if err := run([]string{"nab", "--data", data, "--out", out, "--labels", lf}, &stdout, &stdout); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"in-sample", "CV-halves", "CV-category", "shipped@", "standard", "thresholds.json"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}
	b, err := os.ReadFile(filepath.Join(out, "thresholds.json"))
	if err != nil {
		t.Fatal(err)
	}
	var thr map[string]map[string]struct{ Threshold float64 }
	if err := json.Unmarshal(b, &thr); err != nil {
		t.Fatal(err)
	}
	shipped, err := shippedThreshold()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"standard", "reward_low_FP_rate", "reward_low_FN_rate"} {
		if got := thr["netaiops"][p].Threshold; got != shipped || got != detect.DefaultMinScore {
			t.Errorf("thresholds.json %s: %v, want the shipped min_score %v", p, got, detect.DefaultMinScore)
		}
	}
	// The files are alike, so every fold fits the in-sample threshold and
	// the cross-validated scores equal the in-sample one.
	for _, l := range strings.Split(stdout.String(), "\n") {
		if f := strings.Fields(l); len(f) == 6 && f[0] == "standard" {
			if f[1] != f[3] || f[1] != f[4] {
				t.Errorf("standard: in-sample %s, CV %s and %s; want equal on alike files", f[1], f[3], f[4])
			}
			return
		}
	}
	t.Errorf("no standard line in:\n%s", stdout.String())
}

func TestNABNoFiles(t *testing.T) {
	if _, err := runNAB(t.TempDir(), t.TempDir()); err == nil || !strings.Contains(err.Error(), "no <category>/<file>.csv") {
		t.Fatalf("err %v, want one saying there are no data files", err)
	}
}

// FuzzScore: any input either fails with an error naming a line, or yields
// one output row per input row, each the input row plus a score in [0,1].
func FuzzScore(f *testing.F) {
	f.Add("timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 00:05:00,2.5\n")
	f.Add("timestamp,value\n2014-04-01 00:00:00,NaN\n2014-04-01 00:00:00,-Inf\n")
	f.Add("timestamp,value\r\n2014-04-01T00:00:00Z,1e308\r\n")
	f.Add("timestamp,value\n2014-04-01 00:00:00,1,2\n")
	f.Fuzz(func(t *testing.T, in string) {
		var out strings.Builder
		fr, err := score(strings.NewReader(in), &out)
		n := len(fr.ts)
		if err != nil {
			if !strings.Contains(err.Error(), "line ") {
				t.Fatalf("error %q does not name a line", err)
			}
			return
		}
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		if len(lines) != n+1 || lines[0] != "timestamp,value,anomaly_score" {
			t.Fatalf("%d rows scored, output has %d lines, header %q", n, len(lines), lines[0])
		}
		for _, l := range lines[1:] {
			cut := strings.LastIndexByte(l, ',')
			s, err := strconv.ParseFloat(l[cut+1:], 64)
			if err != nil || !(s >= 0 && s <= 1) {
				t.Fatalf("row %q: score not in [0,1]", l)
			}
		}
	})
}
