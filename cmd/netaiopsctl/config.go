package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// globals are the options every command takes, from flags, environment and
// the client configuration file.
type globals struct {
	address  string
	ca       string
	token    string
	insecure bool
	config   string
	output   string
	timeout  time.Duration
	// setFlags names the global flags given on the command line.
	setFlags map[string]bool
}

// usageError is a command line the program cannot run: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErr(msg string) error { return &usageError{msg: msg} }

// errHelp ends a command that printed its help: exit 0.
var errHelp = errors.New("help printed")

// newFlagSet returns a flag set with the global flags bound to a.g; the
// current values are the defaults, so flags given before the command
// survive a second flag set.
func (a *app) newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&a.g.address, "address", a.g.address, "controller address host:port")
	fs.StringVar(&a.g.ca, "ca", a.g.ca, "PEM CA bundle of the controller's certificate")
	fs.StringVar(&a.g.token, "token", a.g.token, "bearer token")
	fs.BoolVar(&a.g.insecure, "insecure", a.g.insecure, "plaintext to a loopback controller")
	fs.StringVar(&a.g.config, "config", a.g.config, "client configuration file")
	fs.StringVar(&a.g.output, "output", a.g.output, "table, json or yaml")
	fs.StringVar(&a.g.output, "o", a.g.output, "table, json or yaml")
	if a.g.timeout == 0 {
		a.g.timeout = 10 * time.Second
	}
	fs.DurationVar(&a.g.timeout, "timeout", a.g.timeout, "deadline of each call")
	return fs
}

var globalFlagNames = map[string]bool{"address": true, "ca": true, "token": true, "insecure": true, "config": true, "output": true, "o": true, "timeout": true}

// parse parses flags and positional arguments in any order (flags after
// arguments too); with stopAtFirst it stops at the first positional
// argument (the command name) and returns it with the rest.
func (a *app) parse(fs *flag.FlagSet, args []string, stopAtFirst bool) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				if fs.Name() == "netaiopsctl" {
					fmt.Fprint(a.stdout, usageText)
				} else {
					fmt.Fprintf(a.stdout, "Usage of netaiopsctl %s (global flags: netaiopsctl help):\n", fs.Name())
					fs.VisitAll(func(f *flag.Flag) {
						if !globalFlagNames[f.Name] {
							fmt.Fprintf(a.stdout, "  --%s\t%s\n", f.Name, f.Usage)
						}
					})
				}
				return nil, errHelp
			}
			return nil, usageErr(fs.Name() + ": " + err.Error())
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		if stopAtFirst {
			pos = append(pos, args...)
			break
		}
		if args[0] == "--" {
			pos = append(pos, args[1:]...)
			break
		}
		pos, args = append(pos, args[0]), args[1:]
	}
	fs.Visit(func(f *flag.Flag) {
		if globalFlagNames[f.Name] {
			a.g.setFlags[f.Name] = true
		}
	})
	return pos, nil
}

// fileConfig is ~/.config/netaiops/netaiopsctl.yaml.
type fileConfig struct {
	Address  string `yaml:"address"`
	CA       string `yaml:"ca"`
	Token    string `yaml:"token"`
	Insecure bool   `yaml:"insecure"`
}

var fileKeys = []string{"address", "ca", "insecure", "token"}

// configPath is the client configuration file: --config, else
// $XDG_CONFIG_HOME or ~/.config, then netaiops/netaiopsctl.yaml. explicit
// reports whether it was named (then it must exist).
func (a *app) configPath() (path string, explicit bool) {
	if a.g.config != "" {
		return a.g.config, true
	}
	if p := a.getenv("NETAIOPS_CONFIG"); p != "" {
		return p, true
	}
	if x := a.getenv("XDG_CONFIG_HOME"); x != "" {
		return filepath.Join(x, configFileSuffix), false
	}
	if h := a.getenv("HOME"); h != "" {
		return filepath.Join(h, ".config", configFileSuffix), false
	}
	return "", false
}

// loadFile reads a client configuration strictly: unknown keys and values
// of the wrong type are errors naming file:line.
func loadFile(path string) (fileConfig, error) {
	var fc fileConfig
	data, err := os.ReadFile(path)
	if err != nil {
		return fc, err
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return fc, fmt.Errorf("%s: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(root.Content) == 0 {
		return fc, nil // empty file
	}
	n := root.Content[0]
	if n.Kind != yaml.MappingNode {
		return fc, fmt.Errorf("%s:%d: want a mapping with keys %s", path, n.Line, strings.Join(fileKeys, ", "))
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		known := sort.SearchStrings(fileKeys, k.Value)
		if known == len(fileKeys) || fileKeys[known] != k.Value {
			return fc, fmt.Errorf("%s:%d: unknown key %q (known: %s)", path, k.Line, k.Value, strings.Join(fileKeys, ", "))
		}
		if l, dup := seen[k.Value]; dup {
			return fc, fmt.Errorf("%s:%d: key %q given twice (first at line %d)", path, k.Line, k.Value, l)
		}
		seen[k.Value] = k.Line
	}
	if err := n.Decode(&fc); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) && len(te.Errors) > 0 {
			return fc, fmt.Errorf("%s:%s", path, strings.TrimPrefix(te.Errors[0], "line "))
		}
		return fc, fmt.Errorf("%s: %w", path, err)
	}
	return fc, nil
}

// resolve fills the connection options: flags win over the environment,
// the environment over the file. It also checks the output format.
func (a *app) resolve() error {
	switch a.g.output {
	case "", "table":
		a.g.output = "table"
	case "json", "yaml":
	default:
		return usageErr(fmt.Sprintf("-o %s: want table, json or yaml", a.g.output))
	}
	path, explicit := a.configPath()
	var fc fileConfig
	if path != "" {
		var err error
		fc, err = loadFile(path)
		switch {
		case errors.Is(err, os.ErrNotExist) && !explicit:
		case errors.Is(err, os.ErrNotExist):
			return usageErr(fmt.Sprintf("config file %s does not exist", path))
		case err != nil:
			return usageErr("config file " + err.Error())
		}
	}
	pick := func(flagName, flagVal, envName, fileVal, def string) string {
		if a.g.setFlags[flagName] {
			return flagVal
		}
		if envName != "" {
			if v := a.getenv(envName); v != "" {
				return v
			}
		}
		if fileVal != "" {
			return fileVal
		}
		return def
	}
	a.g.address = pick("address", a.g.address, "NETAIOPS_ADDRESS", fc.Address, defaultAddress)
	a.g.token = pick("token", a.g.token, "NETAIOPS_TOKEN", fc.Token, "")
	a.g.ca = pick("ca", a.g.ca, "NETAIOPS_CA", fc.CA, "")
	if !a.g.setFlags["insecure"] {
		switch v := a.getenv("NETAIOPS_INSECURE"); v {
		case "":
			a.g.insecure = fc.Insecure
		case "1", "true":
			a.g.insecure = true
		case "0", "false":
			a.g.insecure = false
		default:
			return usageErr(fmt.Sprintf("NETAIOPS_INSECURE=%s: want true or false", v))
		}
	}
	if a.g.insecure && a.g.ca != "" {
		return usageErr("--insecure and --ca: choose one (plaintext to a loopback controller, or TLS with this CA)")
	}
	if a.g.timeout <= 0 {
		return usageErr(fmt.Sprintf("--timeout %s: want a positive duration", a.g.timeout))
	}
	return nil
}
