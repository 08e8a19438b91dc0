package main

import (
	"fmt"
	"regexp"
	"strings"
)

// matcher is one label matcher on an agent's labels, as in Prometheus and
// Alertmanager: name=value, name!=value, name=~regexp, name!~regexp
// (regular expressions match the whole value). A missing label has the
// value "".
type matcher struct {
	name, op, value string
	re              *regexp.Regexp
}

func parseMatcher(s string) (matcher, error) {
	bad := fmt.Errorf("--label %s: want name=value, name!=value, name=~regexp or name!~regexp", s)
	i := strings.IndexAny(s, "=!")
	if i <= 0 {
		return matcher{}, bad
	}
	m := matcher{name: s[:i]}
	rest := s[i:]
	for _, op := range []string{"!=", "=~", "!~", "="} {
		if strings.HasPrefix(rest, op) {
			m.op, m.value = op, rest[len(op):]
			break
		}
	}
	switch m.op {
	case "":
		return matcher{}, bad
	case "=~", "!~":
		re, err := regexp.Compile("^(?:" + m.value + ")$")
		if err != nil {
			return matcher{}, fmt.Errorf("--label %s: %v", s, err)
		}
		m.re = re
	}
	return m, nil
}

func (m matcher) match(labels map[string]string) bool {
	v := labels[m.name]
	switch m.op {
	case "=":
		return v == m.value
	case "!=":
		return v != m.value
	case "=~":
		return m.re.MatchString(v)
	}
	return !m.re.MatchString(v)
}

// matcherFlags collects repeated --label matchers.
type matcherFlags []matcher

func (f *matcherFlags) String() string { return "" }
func (f *matcherFlags) Set(s string) error {
	m, err := parseMatcher(s)
	if err != nil {
		return err
	}
	*f = append(*f, m)
	return nil
}

func (f matcherFlags) matchAll(labels map[string]string) bool {
	for _, m := range f {
		if !m.match(labels) {
			return false
		}
	}
	return true
}

// agentLabels returns every agent's labels, all pages.
func (a *app) agentLabels(c *clients) (map[string]map[string]string, error) {
	agents, err := a.listAgents(c, "list agents (for --label)")
	if err != nil {
		return nil, err
	}
	out := make(map[string]map[string]string, len(agents))
	for _, ag := range agents {
		out[ag.GetId()] = ag.GetLabels()
	}
	return out, nil
}
