// Command netaiopsctl is the operators' command line for the netaiops
// controller: list, read, watch and acknowledge issues, look at agents,
// manage their configurations and poll a device now. It is a gRPC client of
// the controller and nothing else.
//
// Exit codes, for scripts:
//
//	0  success
//	1  any other error (bad input the controller refused, a failed poll, ...)
//	2  usage: unknown command or flag, missing or malformed argument, bad client configuration
//	3  not found (issue, agent, configuration, target)
//	4  unauthenticated or permission denied
//	5  controller unavailable, or it did not answer in time
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes (see the package comment).
const (
	exitOK           = 0
	exitError        = 1
	exitUsage        = 2
	exitNotFound     = 3
	exitAuth         = 4
	exitUnavailable  = 5
	defaultAddress   = "127.0.0.1:7443"
	configFileSuffix = "netaiops/netaiopsctl.yaml"
)

// Version is set at build time with -ldflags "-X main.Version=...".
var Version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr, isTerminal(os.Stdout))
	stop()
	os.Exit(code)
}

// app is one invocation: its streams, environment and global options.
type app struct {
	ctx    context.Context
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	color  bool
	g      globals
}

// run executes one command line and returns the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, tty bool) int {
	a := &app{ctx: ctx, stdout: stdout, stderr: stderr, getenv: getenv, color: tty && getenv("NO_COLOR") == ""}
	a.g.setFlags = map[string]bool{}
	err := a.dispatch(args)
	if err == nil || errors.Is(err, errHelp) {
		return exitOK
	}
	code, msg := describe(err, a.g.token != "")
	if msg != "" {
		fmt.Fprintln(stderr, "netaiopsctl: "+msg)
	}
	return code
}

const usageText = `netaiopsctl: the operators' command line for the netaiops controller

Usage:
  netaiopsctl [global flags] COMMAND [flags]

Commands:
  issues list      list issues, most severe first (default: open ones); filters
                   --state --kind --severity --agent --device --label name=value|!=|=~|!~
  issues get ID    one issue: evidence and the timeline of its events
  issues watch     print one line per issue change, live (Ctrl-C ends)
  issues ack ID    acknowledge an issue (--comment TEXT)
  agents list      agents: connected, version, last seen, configuration applied or refused
  config list      every stored configuration
  config get       the configuration stored for --agent ID or --label k=v
  config set FILE  store FILE (YAML: snmp, targets) for --agent ID or --label k=v
  config diff FILE unified diff from the stored configuration to FILE
  config delete    remove the configuration of --agent ID or --label k=v
  poll TARGET      ask --agent ID to poll TARGET now and print what it read
  version          print netaiopsctl's version

Global flags (also after the command):
  --address HOST:PORT  controller (env NETAIOPS_ADDRESS; default 127.0.0.1:7443)
  --ca FILE            PEM CA bundle that signs the controller's certificate (default: system roots)
  --token TOKEN        bearer token (env NETAIOPS_TOKEN)
  --insecure           plaintext gRPC to a loopback controller (as 'make run' starts it)
  --config FILE        client configuration (default ~/.config/netaiops/netaiopsctl.yaml)
  --timeout DURATION   deadline of each call (default 10s; not for watch)
  -o, --output FORMAT  table (default), json or yaml

Flags win over the environment, the environment over the file.
Exit codes: 0 ok, 1 error, 2 usage, 3 not found, 4 unauthenticated or permission denied,
5 unavailable or timed out.
`

func (a *app) dispatch(args []string) error {
	fs := a.newFlagSet("netaiopsctl")
	rest, err := a.parse(fs, args, true)
	if err != nil {
		return err
	}
	if len(rest) == 0 {
		fmt.Fprint(a.stderr, usageText)
		return usageErr("no command given")
	}
	cmd, sub, rest := rest[0], "", rest[1:]
	switch cmd {
	case "help", "-h", "--help":
		fmt.Fprint(a.stdout, usageText)
		return nil
	case "version":
		fmt.Fprintln(a.stdout, "netaiopsctl", Version)
		return nil
	case "poll":
		return a.poll(rest)
	case "issues", "issue", "agents", "agent", "config":
		if len(rest) == 0 {
			return usageErr(fmt.Sprintf("%s: want a subcommand (see netaiopsctl help)", cmd))
		}
		sub, rest = rest[0], rest[1:]
	default:
		return usageErr(fmt.Sprintf("unknown command %q (see netaiopsctl help)", cmd))
	}
	switch cmd + " " + sub {
	case "issues list", "issue list":
		return a.issuesList(rest)
	case "issues get", "issue get":
		return a.issuesGet(rest)
	case "issues watch", "issue watch":
		return a.issuesWatch(rest)
	case "issues ack", "issue ack":
		return a.issuesAck(rest)
	case "agents list", "agent list":
		return a.agentsList(rest)
	case "config list":
		return a.configList(rest)
	case "config get":
		return a.configGet(rest)
	case "config set":
		return a.configSet(rest)
	case "config diff":
		return a.configDiff(rest)
	case "config delete":
		return a.configDelete(rest)
	}
	return usageErr(fmt.Sprintf("unknown command %q (see netaiopsctl help)", cmd+" "+sub))
}
