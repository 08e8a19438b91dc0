package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	netaiopsv1 "github.com/netaiops/netaiops/gen/netaiops/v1"
)

// clients are the controller's services over one connection.
type clients struct {
	conn   *grpc.ClientConn
	issues netaiopsv1.IssueServiceClient
	fleet  netaiopsv1.FleetServiceClient
}

// connect resolves the options and dials the controller (lazily: errors
// of the connection come with the first call).
func (a *app) connect() (*clients, error) {
	if err := a.resolve(); err != nil {
		return nil, err
	}
	host, _, err := net.SplitHostPort(a.g.address)
	if err != nil {
		return nil, usageErr(fmt.Sprintf("address %q: want host:port", a.g.address))
	}
	var creds credentials.TransportCredentials
	if a.g.insecure {
		if !isLoopback(host) {
			return nil, usageErr(fmt.Sprintf("--insecure: %s is not a loopback address; plaintext is only for a loopback controller (use TLS, with --ca if needed)", a.g.address))
		}
		creds = insecure.NewCredentials()
	} else {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
		if a.g.ca != "" {
			pem, err := os.ReadFile(a.g.ca)
			if err != nil {
				return nil, usageErr(fmt.Sprintf("--ca: %v", err))
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, usageErr(fmt.Sprintf("--ca %s: no PEM certificate in it", a.g.ca))
			}
			cfg.RootCAs = pool
		}
		creds = credentials.NewTLS(cfg)
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds), grpc.WithUserAgent("netaiopsctl/" + Version)}
	if tok := a.g.token; tok != "" {
		add := func(ctx context.Context) context.Context {
			return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
		}
		opts = append(opts,
			grpc.WithUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, o ...grpc.CallOption) error {
				return invoker(add(ctx), method, req, reply, cc, o...)
			}),
			grpc.WithStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, o ...grpc.CallOption) (grpc.ClientStream, error) {
				return streamer(add(ctx), desc, cc, method, o...)
			}))
	}
	conn, err := grpc.NewClient(a.g.address, opts...)
	if err != nil {
		return nil, usageErr(fmt.Sprintf("address %s: %v", a.g.address, err))
	}
	return &clients{conn: conn, issues: netaiopsv1.NewIssueServiceClient(conn), fleet: netaiopsv1.NewFleetServiceClient(conn)}, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// callCtx is the context of one unary call.
func (a *app) callCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(a.ctx, a.g.timeout)
}

// opError is a failed call to the controller: the operation and the
// address, for the message.
type opError struct {
	op      string
	address string
	err     error
}

func (e *opError) Error() string { return e.op + ": " + e.err.Error() }
func (e *opError) Unwrap() error { return e.err }

func (a *app) callErr(op string, err error) error {
	return &opError{op: op, address: a.g.address, err: err}
}

// describe maps an error to an exit code and the message that says what to
// do about it.
func describe(err error, haveToken bool) (int, string) {
	var ue *usageError
	if errors.As(err, &ue) {
		return exitUsage, ue.msg
	}
	var oe *opError
	if !errors.As(err, &oe) {
		return exitError, err.Error()
	}
	st, ok := status.FromError(oe.err)
	if !ok {
		if errors.Is(oe.err, context.Canceled) {
			return exitError, oe.op + ": interrupted"
		}
		return exitError, oe.Error()
	}
	msg := st.Message()
	switch st.Code() {
	case codes.Unauthenticated:
		if !haveToken {
			return exitAuth, fmt.Sprintf("%s: Unauthenticated: no token; set NETAIOPS_TOKEN or --token (%s)", oe.op, msg)
		}
		return exitAuth, fmt.Sprintf("%s: Unauthenticated: the controller refused the token (%s); check NETAIOPS_TOKEN or --token", oe.op, msg)
	case codes.PermissionDenied:
		return exitAuth, fmt.Sprintf("%s: PermissionDenied: %s; use a token whose role allows it (viewer reads, operator acknowledges and polls, admin sets configurations)", oe.op, msg)
	case codes.NotFound:
		return exitNotFound, fmt.Sprintf("%s: NotFound: %s", oe.op, msg)
	case codes.Unavailable:
		if !strings.Contains(msg, "connection error") && !strings.Contains(msg, "transport") {
			// The controller answered: something behind it is unavailable.
			return exitUnavailable, fmt.Sprintf("%s: Unavailable: %s", oe.op, msg)
		}
		hint := "check --address or NETAIOPS_ADDRESS"
		switch {
		case strings.Contains(msg, "first record does not look like a TLS handshake"):
			hint = "the controller speaks plaintext: add --insecure (loopback only)"
		case strings.Contains(msg, "certificate"):
			hint = "the controller's certificate is not trusted: pass its CA with --ca"
		case strings.Contains(msg, "connection refused"):
			hint = "is the controller running? check --address or NETAIOPS_ADDRESS"
		}
		return exitUnavailable, fmt.Sprintf("%s: Unavailable: controller %s: %s; %s", oe.op, oe.address, msg, hint)
	case codes.DeadlineExceeded:
		return exitUnavailable, fmt.Sprintf("%s: DeadlineExceeded: %s; the controller or agent did not answer in time (--timeout)", oe.op, msg)
	case codes.Canceled:
		return exitError, oe.op + ": interrupted"
	}
	return exitError, fmt.Sprintf("%s: %s: %s", oe.op, st.Code(), msg)
}

// allPages fetches every page of a paged List call: fetch takes a page
// token and returns that page's items and the next token ("" on the last).
func allPages[T any](fetch func(token string) ([]T, string, error)) ([]T, error) {
	var all []T
	token := ""
	for {
		items, next, err := fetch(token)
		if err != nil {
			return nil, err
		}
		all = append(all, items...)
		if next == "" {
			return all, nil
		}
		token = next
	}
}

// listAgents returns every agent, all pages; what names the call in errors.
func (a *app) listAgents(c *clients, what string) ([]*netaiopsv1.Agent, error) {
	return allPages(func(token string) ([]*netaiopsv1.Agent, string, error) {
		ctx, cancel := a.callCtx()
		defer cancel()
		resp, err := c.fleet.ListAgents(ctx, &netaiopsv1.ListAgentsRequest{PageSize: 1000, PageToken: token})
		if err != nil {
			return nil, "", a.callErr(what, err)
		}
		return resp.GetAgents(), resp.GetNextPageToken(), nil
	})
}
