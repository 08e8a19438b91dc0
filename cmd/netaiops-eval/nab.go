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
	"strings"
	"time"

	"github.com/netaiops/netaiops/agent/config"
	"github.com/netaiops/netaiops/agent/detect"
	"github.com/netaiops/netaiops/agent/detect/anomaly"
	"github.com/netaiops/netaiops/agent/detect/options"
	"github.com/netaiops/netaiops/collector"
)

// detectorName is the name NAB's scorer knows our results by.
const detectorName = "netaiops"

type nabStats struct {
	files, rows int
	elapsed     time.Duration
	// results holds each file's rows as scored, for the scorer.
	results []fileResult
}

// fileResult is one scored data file: its path under the data directory
// (category/file.csv, as NAB's labels name it), and each row's timestamp
// text and score.
type fileResult struct {
	rel    string
	ts     []string
	scores []float64
}

// runNAB scores every dataDir/<category>/<file>.csv through the agent's
// detection path (see agentPath) and writes
// outDir/netaiops/<category>/netaiops_<file>.csv.
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
		fr, err := scoreFile(in, out)
		if err != nil {
			return st, err
		}
		fr.rel = cat + "/" + filepath.Base(in)
		st.files++
		st.rows += len(fr.ts)
		st.results = append(st.results, fr)
	}
	st.elapsed = time.Since(start)
	return st, nil
}

// scoreFile streams one data file through a new agent path.
func scoreFile(in, out string) (fileResult, error) {
	var fr fileResult
	src, err := os.Open(in)
	if err != nil {
		return fr, fmt.Errorf("open data file: %w", err)
	}
	defer src.Close()
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fr, fmt.Errorf("create results directory: %w", err)
	}
	dst, err := os.Create(out)
	if err != nil {
		return fr, fmt.Errorf("create results file: %w", err)
	}
	fr, err = score(src, dst)
	if err != nil {
		dst.Close()
		return fr, fmt.Errorf("score %s: %w", in, err)
	}
	if err := dst.Close(); err != nil {
		return fr, fmt.Errorf("write %s: %w", out, err)
	}
	return fr, nil
}

// agentConfig is the least configuration the agent accepts; everything
// the detection engine reads from it is the shipped default.
const agentConfig = `
agent: {id: netaiops-eval, data_dir: /nonexistent}
controller: {address: "127.0.0.1:1", insecure: true}
`

// evalDevice and evalMetric name the series each file becomes: an
// interface's inbound traffic rate, which the shipped anomaly rules score.
const (
	evalDevice = "nab"
	evalMetric = "ifHCInOctets" + detect.RateSuffix
)

// agentPath is the agent's detection path for one series: a detect.Engine
// built from the agent's default configuration, with the scorer the engine
// makes by default (detect.NewScorer), tapped so that each row's score can
// be written. Each row is one successful poll of one device, so the
// engine's settle periods, its ordering of polls and the scorer's series
// set and eviction all apply as in the agent.
type agentPath struct {
	eng    *detect.Engine
	tap    *scoreTap
	labels collector.Labels
}

// scoreTap passes updates to the scorer and keeps the last result.
type scoreTap struct {
	s      detect.Scorer
	res    anomaly.Result
	scored bool
}

func (t *scoreTap) Update(key uint64, at time.Time, v float64) (anomaly.Result, error) {
	res, err := t.s.Update(key, at, v)
	t.res, t.scored = res, err == nil
	return res, err
}

// shippedOptions returns the engine options the agent runs with by default.
func shippedOptions() (detect.Options, error) {
	c, err := config.Parse([]byte(agentConfig), "netaiops-eval")
	if err != nil {
		return detect.Options{}, fmt.Errorf("default agent configuration: %w", err)
	}
	return options.FromConfig(c), nil
}

// shippedThreshold is the min_score of the shipped anomaly rule evalMetric
// falls under: the score at which the agent opens metric_anomaly.
func shippedThreshold() (float64, error) {
	o, err := shippedOptions()
	if err != nil {
		return 0, err
	}
	for _, r := range o.Anomalies {
		if r.Metric == evalMetric {
			return r.MinScore, nil
		}
	}
	return 0, fmt.Errorf("default agent configuration: no anomaly rule for %s", evalMetric)
}

func newAgentPath(name string) (*agentPath, error) {
	o, err := shippedOptions()
	if err != nil {
		return nil, err
	}
	tap := &scoreTap{s: detect.NewScorer(o.MaxAnomalySeries)}
	o.Scorer = tap
	return &agentPath{eng: detect.New("netaiops-eval", o), tap: tap,
		labels: collector.NewLabels("ifIndex", "1", "ifName", name)}, nil
}

// observe feeds one row as a poll and returns its score: 0 when the
// engine did not score it (a poll older than the last one, a settling
// device) or the series is still learning.
func (a *agentPath) observe(at time.Time, v float64) float64 {
	a.tap.scored = false
	a.eng.Observe(collector.Poll{Target: collector.Target{Name: evalDevice}, Time: at,
		Samples: []collector.Sample{{Metric: evalMetric, Kind: collector.Rate, Labels: a.labels, Value: v}}})
	if !a.tap.scored || a.tap.res.Learning {
		return 0
	}
	return a.tap.res.Score
}

// timeLayouts are the timestamp formats accepted in data files; NAB uses the
// first.
var timeLayouts = []string{"2006-01-02 15:04:05", "2006-01-02 15:04:05.000000", time.RFC3339Nano}

// score reads timestamp,value rows from r and writes
// timestamp,value,anomaly_score rows to w, keeping each row's timestamp and
// value text as read. Errors name the line. A row dated before the one
// before it is scored as the agent treats a poll older than the last: not
// at all (score 0).
func score(r io.Reader, w io.Writer) (fileResult, error) {
	var fr fileResult
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	bw := bufio.NewWriterSize(w, 64<<10)
	ap, err := newAgentPath("series")
	if err != nil {
		return fr, err
	}
	line := 0
	buf := make([]byte, 0, 128)
	for sc.Scan() {
		line++
		text := bytes.TrimRight(sc.Bytes(), "\r")
		if line == 1 {
			if string(text) != "timestamp,value" {
				return fr, fmt.Errorf("line 1: header is %q, want \"timestamp,value\"", text)
			}
			if _, err := bw.WriteString("timestamp,value,anomaly_score\n"); err != nil {
				return fr, fmt.Errorf("write: %w", err)
			}
			continue
		}
		tsText, valText, ok := bytes.Cut(text, []byte(","))
		if !ok || bytes.IndexByte(valText, ',') >= 0 {
			return fr, fmt.Errorf("line %d: want 2 fields timestamp,value, got %q", line, text)
		}
		ts, err := parseTime(string(tsText))
		if err != nil {
			return fr, fmt.Errorf("line %d: %w", line, err)
		}
		v, err := strconv.ParseFloat(string(valText), 64)
		if err != nil {
			return fr, fmt.Errorf("line %d: value: %w", line, err)
		}
		s := ap.observe(ts, v)
		fr.ts = append(fr.ts, strings.TrimSuffix(string(tsText), ".000000"))
		fr.scores = append(fr.scores, s)
		buf = append(buf[:0], text...)
		buf = append(buf, ',')
		buf = strconv.AppendFloat(buf, s, 'f', -1, 64)
		buf = append(buf, '\n')
		if _, err := bw.Write(buf); err != nil {
			return fr, fmt.Errorf("write: %w", err)
		}
	}
	if err := sc.Err(); err != nil {
		return fr, fmt.Errorf("line %d: read: %w", line+1, err)
	}
	if line == 0 {
		return fr, fmt.Errorf("line 1: empty file, want header \"timestamp,value\"")
	}
	if err := bw.Flush(); err != nil {
		return fr, fmt.Errorf("write: %w", err)
	}
	return fr, nil
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
