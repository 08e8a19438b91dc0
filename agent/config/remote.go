package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"

	"go.yaml.in/yaml/v3"
)

// RemoteSections are the top-level sections a controller configuration may
// set. Everything else (identity, controller address, credentials,
// data_dir) stays the local file's: it is how the agent reaches the
// controller in the first place.
var RemoteSections = map[string]bool{"snmp": true, "targets": true}

// WithRemote returns the configuration the agent runs with a controller
// configuration: c's file with each section the remote document sets
// replaced by the remote one, except sections pinned by controller.pin.
// The result is decoded, defaulted and validated like a file; errors name
// the remote document (name) with its line numbers. An empty document
// gives c's own file back. ignored lists the pinned sections the remote
// document tried to set.
func (c *Config) WithRemote(doc []byte, name string) (merged *Config, ignored []string, err error) {
	if c.raw == nil {
		return nil, nil, errors.New("apply controller config: the local config was not read from a file")
	}
	local, err := mappingOf(c.raw)
	if err != nil {
		return nil, nil, fmt.Errorf("apply controller config: local file: %w", err)
	}
	if len(bytes.TrimSpace(doc)) > 0 {
		remote, err := mappingOf(doc)
		if err != nil {
			return nil, nil, &Error{File: name, Msg: err.Error()}
		}
		if remote.Kind != yaml.MappingNode {
			return nil, nil, &Error{File: name, Line: remote.Line, Msg: "expected a mapping with keys snmp, targets"}
		}
		for i := 0; i+1 < len(remote.Content); i += 2 {
			k, v := remote.Content[i], remote.Content[i+1]
			switch {
			case !RemoteSections[k.Value]:
				return nil, nil, &Error{File: name, Line: k.Line, Path: k.Value, Msg: "not settable by the controller (allowed: snmp, targets)"}
			case slices.Contains(c.Controller.Pin, k.Value):
				ignored = append(ignored, k.Value)
			default:
				setKey(local, k, v)
			}
		}
	}
	n := &Config{file: name, lines: map[string]int{}, raw: c.raw}
	d := decoder{file: name, lines: n.lines}
	d.value(local, n, "", 0)
	if err := errors.Join(d.errs...); err != nil {
		return nil, ignored, err
	}
	if err := n.finish(); err != nil {
		return nil, ignored, err
	}
	return n, ignored, nil
}

// mappingOf parses one YAML document and returns its top node (an empty
// mapping for an empty document).
func mappingOf(data []byte) (*yaml.Node, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}, nil
		}
		return nil, fmt.Errorf("invalid YAML: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one YAML document (want exactly one)")
	}
	n := &doc
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	return n, nil
}

// setKey replaces the value of key k in mapping m, or appends it.
func setKey(m *yaml.Node, k, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == k.Value {
			m.Content[i+1] = v
			return
		}
	}
	m.Content = append(m.Content, k, v)
}
