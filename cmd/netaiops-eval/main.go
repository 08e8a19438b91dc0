// Command netaiops-eval measures the detection engine against public
// benchmarks. Subcommand nab runs the streaming anomaly scorer
// (agent/detect/anomaly) over the Numenta Anomaly Benchmark's data files and
// writes result files in NAB's layout, ready for NAB's scorer:
//
//	netaiops-eval nab --data ../shared/nab/data --out var/nab
//
// writes var/nab/netaiops/<category>/netaiops_<file>.csv for every
// <category>/<file>.csv under --data, through the agent's detection path
// with its shipped defaults, and var/nab/thresholds.json holding the
// shipped threshold (the default min_score) for nabscore -thresholds. With
// --labels (NAB's combined_windows.json) it also prints NAB's scores:
// in-sample, cross-validated and at the shipped threshold.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "netaiops-eval:", err)
		}
		os.Exit(2)
	}
}

const usage = `usage: netaiops-eval nab --data DIR --out DIR [--labels FILE]
       netaiops-eval net [--series N] [--days N] [--interval D] [--seed N]`

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	switch args[0] {
	case "nab":
		fs := flag.NewFlagSet("nab", flag.ContinueOnError)
		fs.SetOutput(stderr)
		data := fs.String("data", "", "NAB data directory holding <category>/<file>.csv")
		out := fs.String("out", "", "results directory; files go to OUT/netaiops/<category>/netaiops_<file>.csv")
		labels := fs.String("labels", "", "NAB's combined_windows.json; when set, print NAB's scores")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *data == "" || *out == "" || fs.NArg() != 0 {
			return errors.New(usage)
		}
		st, err := runNAB(*data, *out)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "scored %d files, %d rows, in %v (%.0f rows/s)\n",
			st.files, st.rows, st.elapsed.Round(1e6), float64(st.rows)/st.elapsed.Seconds())
		shipped, err := shippedThreshold()
		if err != nil {
			return err
		}
		if *labels == "" {
			return nil
		}
		w, err := readLabels(*labels)
		if err != nil {
			return err
		}
		files, err := labelFiles(st.results, w)
		if err != nil {
			return err
		}
		rs := evaluate(files, shipped)
		printReport(stdout, rs, len(files), shipped)
		thr := filepath.Join(*out, "thresholds.json")
		if err := writeThresholds(thr, rs, shipped); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s (the shipped threshold %v for every profile)\n", thr, shipped)
		return nil
	case "net":
		fs := flag.NewFlagSet("net", flag.ContinueOnError)
		fs.SetOutput(stderr)
		series := fs.Int("series", 8, "series per fault kind, and healthy series per metric")
		days := fs.Int("days", 4, "days simulated; faults fall on days 2 and 3, after the 12.5-hour warm-up")
		interval := fs.Duration("interval", 10*time.Second, "poll interval")
		seed := fs.Uint64("seed", 1, "random seed")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		switch {
		case fs.NArg() != 0:
			return errors.New(usage)
		case *series < 1:
			return fmt.Errorf("--series: must be at least 1, got %d", *series)
		case *days < 3:
			return fmt.Errorf("--days: must be at least 3 (faults fall on days 2 and 3), got %d", *days)
		case *interval < time.Second || *interval > 5*time.Minute:
			return fmt.Errorf("--interval: must be from 1s to 5m, got %v", *interval)
		}
		res, healthy, err := runNet(*series, *days, *interval, *seed)
		if err != nil {
			return err
		}
		printNet(stdout, res, healthy, *series, *days, *interval)
		return nil
	default:
		return fmt.Errorf("unknown subcommand %q; %s", args[0], usage)
	}
}
