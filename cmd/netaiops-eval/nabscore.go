package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// NAB's scoring, as ../shared/tools/nabscore does it (NAB v1.1's sweeper
// and optimiser), so that the eval can fit a threshold on some files and
// score others with it: the raw score of a set of files at a threshold is
// the sum of the files' raw scores, so folds add up.

type nabProfile struct {
	name       string
	tp, fp, fn float64
}

var nabProfiles = []nabProfile{
	{name: "standard", tp: 1, fp: 0.11, fn: 1},
	{name: "reward_low_FP_rate", tp: 1, fp: 0.22, fn: 1},
	{name: "reward_low_FN_rate", tp: 1, fp: 0.11, fn: 2},
}

// nabPoint is one scorable (non-probationary) row; win is its window's id
// within its file, -1 outside windows; u is its unweighted sigmoid value.
type nabPoint struct {
	score float64
	win   int32
	u     float64
}

// labelledFile is a scored file with its windows applied.
type labelledFile struct {
	rel, category string
	pts           []nabPoint
	nWin          int // windows with scorable rows
	windows       int // windows in the labels
}

// readLabels reads NAB's combined_windows.json: file -> [[start, end], ...].
func readLabels(path string) (map[string][][2]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read labels: %w", err)
	}
	var w map[string][][2]string
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("decode labels %s: %w", path, err)
	}
	return w, nil
}

// labelFiles applies the labels to the scored files. Every labelled file
// must have been scored; scored files without labels are left out, as
// NAB's scorer does.
func labelFiles(res []fileResult, labels map[string][][2]string) ([]labelledFile, error) {
	byRel := map[string]fileResult{}
	for _, r := range res {
		byRel[r.rel] = r
	}
	rels := make([]string, 0, len(labels))
	for k := range labels {
		rels = append(rels, k)
	}
	sort.Strings(rels)
	out := make([]labelledFile, 0, len(rels))
	for _, rel := range rels {
		r, ok := byRel[rel]
		if !ok {
			return nil, fmt.Errorf("labels name %s: no such data file scored", rel)
		}
		lf := labelledFile{rel: rel, category: filepath.Dir(rel), windows: len(labels[rel])}
		lf.pts = nabSweep(r.ts, r.scores, labels[rel], &lf.nWin)
		out = append(out, lf)
	}
	return out, nil
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

func scaledSigmoid(x float64) float64 {
	if x > 3.0 {
		return -1.0
	}
	return 2*sigmoid(-5*x) - 1.0
}

var maxTP = scaledSigmoid(-1.0)

// nabSweep mirrors NAB's Sweeper.calcSweepScore for one file.
func nabSweep(ts []string, sc []float64, ws [][2]string, nWin *int) []nabPoint {
	n := len(ts)
	idx := map[string]int{}
	for i, t := range ts {
		if _, ok := idx[t]; !ok {
			idx[t] = i
		}
	}
	norm := func(s string) string { return strings.TrimSuffix(s, ".000000") }
	prob := math.Min(math.Floor(0.15*float64(n)), 0.15*5000)
	var out []nabPoint
	wi := 0
	inWin := false
	var right int
	var width float64
	prevRight, prevWidth := -1, 0.0
	curID := int32(-1)
	for i := 0; i < n; i++ {
		if !inWin && wi < len(ws) && ts[i] == norm(ws[wi][0]) {
			inWin = true
			right = idx[norm(ws[wi][1])]
			width = float64(right - idx[norm(ws[wi][0])] + 1)
			curID = -2
			wi++
		}
		var u float64
		switch {
		case inWin:
			u = scaledSigmoid(-float64(right-i+1) / width)
		case prevRight < 0:
			u = -1
		default:
			u = scaledSigmoid(math.Abs(float64(prevRight-i)) / (prevWidth - 1))
		}
		if float64(i) >= prob {
			id := int32(-1)
			if inWin {
				if curID == -2 {
					curID = int32(*nWin)
					*nWin++
				}
				id = curID
			}
			out = append(out, nabPoint{score: sc[i], win: id, u: u})
		}
		if inWin && i == right {
			inWin = false
			prevRight, prevWidth = i, width
		}
	}
	return out
}

// corpus merges files into one list of points, highest score first, with
// window ids made unique across files.
func corpus(files []labelledFile) (pts []nabPoint, nWin, windows int) {
	for _, f := range files {
		for _, p := range f.pts {
			if p.win >= 0 {
				p.win += int32(nWin)
			}
			pts = append(pts, p)
		}
		nWin += f.nWin
		windows += f.windows
	}
	sort.SliceStable(pts, func(i, j int) bool { return pts[i].score > pts[j].score })
	return pts, nWin, windows
}

func (pr nabProfile) weight(p nabPoint) float64 {
	if p.win >= 0 {
		return p.u * pr.tp / maxTP
	}
	return p.u * pr.fp
}

// optimize returns the threshold with the best raw score over pts (ties to
// the highest threshold), as NAB's optimiser finds it.
func (pr nabProfile) optimize(pts []nabPoint, nWin int) (threshold, raw float64) {
	best := make([]float64, nWin)
	for i := range best {
		best[i] = -pr.fn
	}
	total := -pr.fn * float64(nWin)
	bestT, bestS := 1.1, total
	cur := 1.1
	for _, p := range pts {
		if p.score != cur {
			if total > bestS {
				bestT, bestS = cur, total
			}
			cur = p.score
		}
		w := pr.weight(p)
		if p.win < 0 {
			total += w
		} else if w > best[p.win] {
			total += w - best[p.win]
			best[p.win] = w
		}
	}
	if total > bestS {
		bestT, bestS = cur, total
	}
	return bestT, bestS
}

// scoreAt returns the raw score over pts at threshold t.
func (pr nabProfile) scoreAt(pts []nabPoint, nWin int, t float64) float64 {
	best := make([]float64, nWin)
	for i := range best {
		best[i] = -pr.fn
	}
	total := -pr.fn * float64(nWin)
	for _, p := range pts {
		if p.score < t {
			break
		}
		w := pr.weight(p)
		if p.win < 0 {
			total += w
		} else if w > best[p.win] {
			total += w - best[p.win]
			best[p.win] = w
		}
	}
	return total
}

// normalized maps a raw score to NAB's scale: 0 for a detector that never
// fires, 100 for a perfect one.
func (pr nabProfile) normalized(raw float64, nWin, windows int) float64 {
	base := -pr.fn * float64(nWin)
	perfect := float64(windows) * pr.tp
	return 100 * (raw - base) / (perfect - base)
}

// crossValidate fits the threshold on the files train picks and scores the
// others with it, for each split; the raw scores of the held-out files add
// up over the splits, each file being held out exactly once.
func (pr nabProfile) crossValidate(files []labelledFile, splits [][]bool) float64 {
	raw := 0.0
	for _, train := range splits {
		var fit, held []labelledFile
		for i, f := range files {
			if train[i] {
				fit = append(fit, f)
			} else {
				held = append(held, f)
			}
		}
		pts, nWin, _ := corpus(fit)
		t, _ := pr.optimize(pts, nWin)
		hp, hWin, _ := corpus(held)
		raw += pr.scoreAt(hp, hWin, t)
	}
	return raw
}

// halves are two splits: within each category, files in name order
// alternate between the halves; each half is fitted on once and scored on
// once.
func halves(files []labelledFile) [][]bool {
	a := make([]bool, len(files))
	b := make([]bool, len(files))
	k := map[string]int{}
	for i, f := range files {
		a[i] = k[f.category]%2 == 0
		b[i] = !a[i]
		k[f.category]++
	}
	return [][]bool{a, b}
}

// leaveCategoryOut is one split per category: fitted on all the others.
func leaveCategoryOut(files []labelledFile) [][]bool {
	var cats []string
	seen := map[string]bool{}
	for _, f := range files {
		if !seen[f.category] {
			seen[f.category] = true
			cats = append(cats, f.category)
		}
	}
	var out [][]bool
	for _, c := range cats {
		train := make([]bool, len(files))
		for i, f := range files {
			train[i] = f.category != c
		}
		out = append(out, train)
	}
	return out
}

// nabReport is what the eval measured for one profile.
type nabReport struct {
	profile              nabProfile
	inSample, inSampleAt float64 // score at the threshold fitted on all files, and that threshold
	halves, categories   float64 // cross-validated scores
	shipped              float64 // score at the shipped threshold
}

// evaluate scores files in-sample, cross-validated and at the shipped
// threshold, for every profile.
func evaluate(files []labelledFile, shipped float64) []nabReport {
	pts, nWin, windows := corpus(files)
	hv, lc := halves(files), leaveCategoryOut(files)
	var out []nabReport
	for _, pr := range nabProfiles {
		t, raw := pr.optimize(pts, nWin)
		out = append(out, nabReport{
			profile:    pr,
			inSample:   pr.normalized(raw, nWin, windows),
			inSampleAt: t,
			halves:     pr.normalized(pr.crossValidate(files, hv), nWin, windows),
			categories: pr.normalized(pr.crossValidate(files, lc), nWin, windows),
			shipped:    pr.normalized(pr.scoreAt(pts, nWin, shipped), nWin, windows),
		})
	}
	return out
}

func printReport(w io.Writer, rs []nabReport, files int, shipped float64) {
	fmt.Fprintf(w, "NAB scores of %d labelled files (0: never fires, 100: perfect)\n", files)
	fmt.Fprintf(w, "%-20s %10s %10s %10s %10s %14s\n", "profile", "in-sample", "threshold", "CV-halves", "CV-category", "shipped@"+fmt.Sprint(shipped))
	for _, r := range rs {
		fmt.Fprintf(w, "%-20s %10.2f %10.4f %10.2f %10.2f %14.2f\n", r.profile.name, r.inSample, r.inSampleAt,
			r.halves, r.categories, r.shipped)
	}
	fmt.Fprintln(w, "in-sample: one threshold fitted on all files and scored on them; CV-halves: fitted on one half")
	fmt.Fprintln(w, "of each category's files, scored on the other, then swapped; CV-category: fitted on the other")
	fmt.Fprintln(w, "categories, scored on the one left out; shipped: the agent's default min_score, nothing fitted.")
}

// writeThresholds writes NAB's thresholds.json holding the shipped
// threshold for every profile, for nabscore -thresholds.
func writeThresholds(path string, rs []nabReport, shipped float64) error {
	type entry struct {
		Threshold float64 `json:"threshold"`
	}
	m := map[string]map[string]entry{detectorName: {}}
	for _, r := range rs {
		m[detectorName][r.profile.name] = entry{Threshold: shipped}
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode thresholds: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write thresholds: %w", err)
	}
	return nil
}
