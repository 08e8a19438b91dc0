package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/netaiops/netaiops/agent/detect/anomaly"
)

// detectorName is the name NAB's scorer knows our results by.
const detectorName = "netaiops"

type nabStats struct {
	files, rows int
	elapsed     time.Duration
}

// runNAB scores every dataDir/<category>/<file>.csv with a fresh detector
// and writes outDir/netaiops/<category>/netaiops_<file>.csv.
func runNAB(dataDir, outDir string) (nabStats, error) {
	var st nabStats
	files, err := filepath.Glob(filepath.Join(dataDir, "*", "*.csv"))
	if err != nil {
		return st, fmt.Errorf("list %s: %w", dataDir, err)
	}
	if len(files) == 0 {
		return st, fmt.Errorf("list %s: no <category>/<file>.csv files", dataDir)
	}
	sort.Strings(files)
	start := time.Now()
	for _, in := range files {
		cat := filepath.Base(filepath.Dir(in))
		out := filepath.Join(outDir, detectorName, cat, detectorName+"_"+filepath.Base(in))
		n, err := scoreFile(in, out)
		if err != nil {
			return st, err
		}
		st.files++
		st.rows += n
	}
	st.elapsed = time.Since(start)
	return st, nil
}

// scoreFile streams one data file through a new detector. It returns the
// number of rows scored.
func scoreFile(in, out string) (int, error) {
	src, err := os.Open(in)
	if err != nil {
		return 0, fmt.Errorf("open data file: %w", err)
	}
	defer src.Close()
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return 0, fmt.Errorf("create results directory: %w", err)
	}
	dst, err := os.Create(out)
	if err != nil {
		return 0, fmt.Errorf("create results file: %w", err)
	}
	n, err := score(src, dst)
	if err != nil {
		dst.Close()
		return 0, fmt.Errorf("score %s: %w", in, err)
	}
	if err := dst.Close(); err != nil {
		return 0, fmt.Errorf("write %s: %w", out, err)
	}
	return n, nil
}

// timeLayouts are the timestamp formats accepted in data files; NAB uses the
// first.
var timeLayouts = []string{"2006-01-02 15:04:05", "2006-01-02 15:04:05.000000", time.RFC3339Nano}

// score reads timestamp,value rows from r and writes
// timestamp,value,anomaly_score rows to w, keeping each row's timestamp and
// value text as read. Errors name the line.
func score(r io.Reader, w io.Writer) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	bw := bufio.NewWriterSize(w, 64<<10)
	var det anomaly.Detector
	line, rows := 0, 0
	var prev time.Time
	buf := make([]byte, 0, 128)
	for sc.Scan() {
		line++
		text := bytes.TrimRight(sc.Bytes(), "\r")
		if line == 1 {
			if string(text) != "timestamp,value" {
				return rows, fmt.Errorf("line 1: header is %q, want \"timestamp,value\"", text)
			}
			if _, err := bw.WriteString("timestamp,value,anomaly_score\n"); err != nil {
				return rows, fmt.Errorf("write: %w", err)
			}
			continue
		}
		tsText, valText, ok := bytes.Cut(text, []byte(","))
		if !ok || bytes.IndexByte(valText, ',') >= 0 {
			return rows, fmt.Errorf("line %d: want 2 fields timestamp,value, got %q", line, text)
		}
		ts, err := parseTime(string(tsText))
		if err != nil {
			return rows, fmt.Errorf("line %d: %w", line, err)
		}
		if ts.Before(prev) {
			return rows, fmt.Errorf("line %d: timestamp %s is before the previous row's", line, tsText)
		}
		prev = ts
		v, err := strconv.ParseFloat(string(valText), 64)
		if err != nil {
			return rows, fmt.Errorf("line %d: value: %w", line, err)
		}
		res := det.Update(ts, v)
		buf = append(buf[:0], text...)
		buf = append(buf, ',')
		buf = strconv.AppendFloat(buf, res.Score, 'f', -1, 64)
		buf = append(buf, '\n')
		if _, err := bw.Write(buf); err != nil {
			return rows, fmt.Errorf("write: %w", err)
		}
		rows++
	}
	if err := sc.Err(); err != nil {
		return rows, fmt.Errorf("line %d: read: %w", line+1, err)
	}
	if line == 0 {
		return 0, fmt.Errorf("line 1: empty file, want header \"timestamp,value\"")
	}
	if err := bw.Flush(); err != nil {
		return rows, fmt.Errorf("write: %w", err)
	}
	return rows, nil
}

func parseTime(s string) (time.Time, error) {
	var err error
	for _, l := range timeLayouts {
		var t time.Time
		if t, err = time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("timestamp %q: want YYYY-MM-DD HH:MM:SS or RFC 3339", s)
}
