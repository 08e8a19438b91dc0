// Command netaiops-eval measures the detection engine against public
// benchmarks. Subcommand nab runs the streaming anomaly scorer
// (agent/detect/anomaly) over the Numenta Anomaly Benchmark's data files and
// writes result files in NAB's layout, ready for NAB's scorer:
//
//	netaiops-eval nab --data ../shared/nab/data --out var/nab
//
// writes var/nab/netaiops/<category>/netaiops_<file>.csv for every
// <category>/<file>.csv under --data.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "netaiops-eval:", err)
		}
		os.Exit(2)
	}
}

const usage = `usage: netaiops-eval nab --data DIR --out DIR`

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
		return nil
	default:
		return fmt.Errorf("unknown subcommand %q; %s", args[0], usage)
	}
}
