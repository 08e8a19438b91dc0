// Package profile says what the SNMP poller reads from a device: scalars and
// tables named by OID, MIB-free, in YAML. Profiles for the SNMPv2-MIB system
// group, IF-MIB, HOST-RESOURCES-MIB, UCD-SNMP-MIB, ENTITY-SENSOR-MIB and
// LLDP-MIB ship embedded; users add their own files.
//
// A profile file:
//
//	name: my_ups
//	scalars:
//	  - {name: upsBatteryTemperature, oid: 1.3.6.1.2.1.33.1.2.7.0, type: gauge}
//	tables:
//	  - name: upsInputTable
//	    oid: 1.3.6.1.2.1.33.1.3.3.1     # walked once, as a whole
//	    index: [upsInputLineIndex]      # labels for the OID suffix after a column
//	    columns:
//	      - {name: upsInputVoltage, oid: 1.3.6.1.2.1.33.1.3.3.1.3, type: gauge}
//	      - {name: upsInputName, oid: 1.3.6.1.2.1.33.1.3.3.1.6, type: label}
//
// Types: gauge and counter become samples of that kind (the value may be
// scaled: scale 0.01 turns TimeTicks into seconds); label makes the value a
// label of every sample of the row; info is a label that also becomes an
// Info sample (value 1) named after the column. A label column may name a
// fallback label used when the device lacks it or leaves it empty.
//
// Index: each name takes one sub-identifier of the suffix, the last one takes
// the rest. Labels of a table indexed by a single name join every row, in any
// table of the poll, whose index has a component of that name and value:
// ifName from ifXTable labels the ifTable rows; lldpLocPortId from
// lldpLocPortTable labels the lldpRemTable rows through lldpLocPortNum.
package profile

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Types of an object.
const (
	Gauge   = "gauge"
	Counter = "counter"
	Label   = "label"
	Info    = "info"
)

// Object is a scalar or a table column.
type Object struct {
	Name     string  `yaml:"name"`
	OID      string  `yaml:"oid"`
	Type     string  `yaml:"type"`
	Scale    float64 `yaml:"scale,omitempty"`    // multiply numbers by this; 0: 1
	Fallback string  `yaml:"fallback,omitempty"` // label: use this label when the device has none
}

// Table is walked once, from OID, as a whole.
type Table struct {
	Name    string   `yaml:"name"`
	OID     string   `yaml:"oid"`
	Index   []string `yaml:"index"`
	Columns []Object `yaml:"columns"`
}

// Profile is a named set of scalars and tables.
type Profile struct {
	Name    string   `yaml:"name"`
	Scalars []Object `yaml:"scalars,omitempty"`
	Tables  []Table  `yaml:"tables,omitempty"`
}

// Default lists the profiles a target gets when its config names none.
var Default = []string{"system", "if_mib"}

//go:embed builtin/*.yaml
var builtinFS embed.FS

// Builtin returns the embedded profiles by name.
func Builtin() (map[string]*Profile, error) {
	entries, err := fs.ReadDir(builtinFS, "builtin")
	if err != nil {
		return nil, fmt.Errorf("read builtin profiles: %w", err)
	}
	out := map[string]*Profile{}
	for _, e := range entries {
		name := path.Join("builtin", e.Name())
		data, err := builtinFS.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("read builtin profile %s: %w", name, err)
		}
		p, err := Parse(data, name)
		if err != nil {
			return nil, err
		}
		out[p.Name] = p
	}
	return out, nil
}

// Load reads a user profile file.
func Load(file string) (*Profile, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("load profile: %w", err)
	}
	return Parse(data, file)
}

// Parse decodes and validates one profile; file is used in errors.
func Parse(data []byte, file string) (*Profile, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var p Profile
	if err := dec.Decode(&p); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("profile %s: empty", file)
		}
		return nil, fmt.Errorf("profile %s: %w", file, err)
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("profile %s: %w", file, err)
	}
	return &p, nil
}

var nameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate checks names, OIDs and types, and returns every problem found.
func (p *Profile) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !nameRE.MatchString(p.Name) {
		bad("name: %q is not a name (letters, digits, _)", p.Name)
	}
	if len(p.Scalars) == 0 && len(p.Tables) == 0 {
		bad("no scalars and no tables")
	}
	names := map[string]string{}
	object := func(where string, o Object, scalar bool) {
		if !nameRE.MatchString(o.Name) {
			bad("%s: name %q is not a name (letters, digits, _)", where, o.Name)
		} else if prev, dup := names[o.Name]; dup {
			bad("%s: name %s already used by %s", where, o.Name, prev)
		} else {
			names[o.Name] = where
		}
		if _, err := ParseOID(o.OID); err != nil {
			bad("%s: %v", where, err)
		}
		switch o.Type {
		case Gauge, Counter, Info:
		case Label:
			if scalar {
				bad("%s: type label is for table columns (scalars: gauge, counter, info)", where)
			}
		default:
			bad("%s: bad type %q (want gauge, counter, label or info)", where, o.Type)
		}
		if o.Scale < 0 {
			bad("%s: scale must not be negative, got %g", where, o.Scale)
		}
		if o.Fallback != "" && o.Type != Label && o.Type != Info {
			bad("%s: fallback is for label and info columns", where)
		}
	}
	for i, s := range p.Scalars {
		object(fmt.Sprintf("scalars[%d]", i), s, true)
	}
	for i, t := range p.Tables {
		where := fmt.Sprintf("tables[%d]", i)
		if !nameRE.MatchString(t.Name) {
			bad("%s: name %q is not a name (letters, digits, _)", where, t.Name)
		}
		root, err := ParseOID(t.OID)
		if err != nil {
			bad("%s: %v", where, err)
		}
		if len(t.Index) == 0 {
			bad("%s: index: at least one name", where)
		}
		for _, n := range t.Index {
			if !nameRE.MatchString(n) {
				bad("%s: index: %q is not a name (letters, digits, _)", where, n)
			}
		}
		if len(t.Columns) == 0 {
			bad("%s: no columns", where)
		}
		for j, c := range t.Columns {
			cw := fmt.Sprintf("%s.columns[%d]", where, j)
			object(cw, c, false)
			if oid, err := ParseOID(c.OID); err == nil && root != nil && !HasPrefix(oid, root) {
				bad("%s: oid %s is not under the table's oid %s", cw, c.OID, t.OID)
			}
		}
	}
	return errors.Join(errs...)
}

// ParseOID parses a dotted OID ("1.3.6.1" or ".1.3.6.1").
func ParseOID(s string) ([]uint32, error) {
	t := strings.TrimPrefix(s, ".")
	if t == "" {
		return nil, fmt.Errorf("bad oid %q: empty", s)
	}
	parts := strings.Split(t, ".")
	if len(parts) < 2 || len(parts) > 128 {
		return nil, fmt.Errorf("bad oid %q: want 2 to 128 numbers", s)
	}
	oid := make([]uint32, len(parts))
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("bad oid %q: %q is not a number", s, p)
		}
		oid[i] = uint32(n)
	}
	return oid, nil
}

// HasPrefix reports whether oid starts with prefix.
func HasPrefix(oid, prefix []uint32) bool {
	return len(oid) >= len(prefix) && slices.Equal(oid[:len(prefix)], prefix)
}

// Resolve returns the profiles named, from builtin and user profiles (a user
// profile overrides a builtin one of the same name); no names: Default.
func Resolve(names []string, user map[string]*Profile) ([]*Profile, error) {
	builtin, err := Builtin()
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		names = Default
	}
	var out []*Profile
	for _, n := range names {
		p := user[n]
		if p == nil {
			p = builtin[n]
		}
		if p == nil {
			known := make([]string, 0, len(builtin)+len(user))
			for k := range builtin {
				known = append(known, k)
			}
			for k := range user {
				if builtin[k] == nil {
					known = append(known, k)
				}
			}
			slices.Sort(known)
			return nil, fmt.Errorf("unknown profile %q (known: %s)", n, strings.Join(known, ", "))
		}
		out = append(out, p)
	}
	return out, nil
}

// LoadFiles reads user profile files, by profile name. Two files defining
// the same name are an error.
func LoadFiles(files []string) (map[string]*Profile, error) {
	out := map[string]*Profile{}
	from := map[string]string{}
	for _, f := range files {
		p, err := Load(f)
		if err != nil {
			return nil, err
		}
		if prev, dup := from[p.Name]; dup {
			return nil, fmt.Errorf("profile %s: name %s already defined in %s", f, p.Name, prev)
		}
		out[p.Name], from[p.Name] = p, f
	}
	return out, nil
}
