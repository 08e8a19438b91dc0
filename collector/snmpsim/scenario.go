package snmpsim

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// FaultKind names a scripted fault.
type FaultKind string

// Fault kinds.
const (
	// InterfaceDown sets one interface's ifOperStatus to down(2) for the
	// fault's duration; ifAdminStatus stays up and its counters stop growing.
	InterfaceDown FaultKind = "interface_down"
	// Unreachable makes the device ignore every request for the duration.
	Unreachable FaultKind = "unreachable"
	// Reboot restarts the device at the fault's time: sysUpTime and counters
	// start again from zero. It has no duration.
	Reboot FaultKind = "reboot"
)

// Fault is one scripted fault, timed relative to the simulator's start. With
// Every > 0 it repeats: active in [At+k*Every, At+k*Every+Duration) for
// k = 0, 1, ...
type Fault struct {
	Kind      FaultKind     `yaml:"kind"`
	Interface int           `yaml:"interface,omitempty"` // ifIndex, for interface_down
	At        time.Duration `yaml:"at"`
	Duration  time.Duration `yaml:"duration,omitempty"`
	Every     time.Duration `yaml:"every,omitempty"`
}

// DeviceSpec describes one simulated device. Either Interfaces (a generated
// device) or SNMPRec (a recorded walk) is set.
type DeviceSpec struct {
	Name       string  `yaml:"name"`
	Community  string  `yaml:"community,omitempty"`  // default: Name
	Interfaces int     `yaml:"interfaces,omitempty"` // generated devices
	Seed       int64   `yaml:"seed,omitempty"`       // default: derived from Name
	SNMPRec    string  `yaml:"snmprec,omitempty"`    // .snmprec or snmpwalk -On file; relative to the scenario file
	Faults     []Fault `yaml:"faults,omitempty"`
}

// Scenario is the set of devices one Server answers for.
type Scenario struct {
	Devices []DeviceSpec `yaml:"devices"`

	// Source names where the scenario came from, for error messages.
	Source string `yaml:"-"`
}

//go:embed default.yaml
var defaultScenario []byte

// DefaultScenario returns the embedded demo scenario used by "make run":
// core-sw1, edge-sw1 and edge-sw2 with scripted faults.
func DefaultScenario() *Scenario {
	sc, err := ParseScenario(defaultScenario, "embedded default scenario", "")
	if err != nil {
		// The embedded file is tested; failing here is a build defect.
		panic(fmt.Sprintf("snmpsim: %v", err))
	}
	return sc
}

// LoadScenario reads and validates a YAML scenario file. Relative snmprec
// paths are resolved against the file's directory.
func LoadScenario(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load scenario: %w", err)
	}
	return ParseScenario(data, path, filepath.Dir(path))
}

// ParseScenario decodes a YAML scenario strictly (unknown keys are errors),
// fills defaults and validates it. source names the document in errors;
// baseDir resolves relative snmprec paths.
func ParseScenario(data []byte, source, baseDir string) (*Scenario, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var sc Scenario
	if err := dec.Decode(&sc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("scenario %s: empty document, want a devices list", source)
		}
		return nil, fmt.Errorf("scenario %s: %s", source, cleanYAMLError(err))
	}
	sc.Source = source
	for i := range sc.Devices {
		d := &sc.Devices[i]
		if d.SNMPRec != "" && baseDir != "" && !filepath.IsAbs(d.SNMPRec) {
			d.SNMPRec = filepath.Join(baseDir, d.SNMPRec)
		}
	}
	if err := sc.Validate(); err != nil {
		return nil, err
	}
	return &sc, nil
}

// cleanYAMLError flattens yaml.v3's multi-line type errors into one line and
// says "unknown key" for rejected fields.
func cleanYAMLError(err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: unmarshal errors:\n")
	msg = strings.ReplaceAll(msg, "\n", ";")
	var out []string
	for _, part := range strings.Split(msg, ";") {
		part = strings.TrimSpace(part)
		// "line 4: field colour not found in type snmpsim.DeviceSpec"
		if i := strings.Index(part, ": field "); i >= 0 && strings.Contains(part, " not found in type ") {
			key := part[i+len(": field "):]
			key = key[:strings.Index(key, " not found in type ")]
			part = fmt.Sprintf("%s: unknown key %q", part[:i], key)
		}
		if part != "" {
			out = append(out, part)
		}
	}
	return strings.Join(out, "; ")
}

// maxCommunity keeps communities within one BER length octet, which is
// what gosnmp's encoder writes.
const maxCommunity = 127

// Validate fills defaults (community = name) and checks every device and
// fault. Messages name the source, the device and the key.
func (sc *Scenario) Validate() error {
	if len(sc.Devices) == 0 {
		return fmt.Errorf("scenario %s: devices: at least one device is required", sc.Source)
	}
	names := make(map[string]int, len(sc.Devices))
	communities := make(map[string]int, len(sc.Devices))
	var errs []error
	for i := range sc.Devices {
		d := &sc.Devices[i]
		where := fmt.Sprintf("scenario %s: devices[%d]", sc.Source, i)
		if d.Name != "" {
			where += fmt.Sprintf(" (%s)", d.Name)
		}
		if d.Name == "" {
			errs = append(errs, fmt.Errorf("%s: name: required", where))
		} else if j, dup := names[d.Name]; dup {
			errs = append(errs, fmt.Errorf("%s: name: duplicate of devices[%d]", where, j))
		} else {
			names[d.Name] = i
		}
		if d.Community == "" {
			d.Community = d.Name
		}
		if len(d.Community) > maxCommunity {
			errs = append(errs, fmt.Errorf("%s: community: longer than %d bytes", where, maxCommunity))
		}
		if d.Community != "" {
			if j, dup := communities[d.Community]; dup {
				errs = append(errs, fmt.Errorf("%s: community %q: already used by devices[%d]", where, d.Community, j))
			} else {
				communities[d.Community] = i
			}
		}
		switch {
		case d.SNMPRec != "" && d.Interfaces != 0:
			errs = append(errs, fmt.Errorf("%s: interfaces and snmprec are exclusive: set one", where))
		case d.SNMPRec == "" && (d.Interfaces < 1 || d.Interfaces > maxInterfaces):
			errs = append(errs, fmt.Errorf("%s: interfaces: %d out of range, allowed 1..%d (or set snmprec)", where, d.Interfaces, maxInterfaces))
		}
		for j, f := range d.Faults {
			if err := f.validate(d); err != nil {
				errs = append(errs, fmt.Errorf("%s: faults[%d]: %w", where, j, err))
			}
		}
	}
	return errors.Join(errs...)
}

func (f Fault) validate(d *DeviceSpec) error {
	switch f.Kind {
	case InterfaceDown:
		if d.SNMPRec != "" {
			return fmt.Errorf("kind interface_down: only for generated devices (this one replays %s)", d.SNMPRec)
		}
		if f.Interface < 1 || f.Interface > d.Interfaces {
			return fmt.Errorf("interface: %d out of range, allowed 1..%d", f.Interface, d.Interfaces)
		}
	case Unreachable, Reboot:
		if f.Interface != 0 {
			return fmt.Errorf("interface: only for kind interface_down")
		}
	case "":
		return fmt.Errorf("kind: required, allowed: interface_down, unreachable, reboot")
	default:
		return fmt.Errorf("kind: %q unknown, allowed: interface_down, unreachable, reboot", f.Kind)
	}
	if f.At < 0 {
		return fmt.Errorf("at: %v is negative", f.At)
	}
	if f.Every < 0 {
		return fmt.Errorf("every: %v is negative", f.Every)
	}
	if f.Kind == Reboot {
		if f.Duration != 0 {
			return fmt.Errorf("duration: not allowed for kind reboot")
		}
		if f.Every != 0 && f.Every < time.Second {
			return fmt.Errorf("every: %v is shorter than 1s", f.Every)
		}
		return nil
	}
	if f.Duration <= 0 {
		return fmt.Errorf("duration: required and positive for kind %s", f.Kind)
	}
	if f.Every != 0 && f.Every <= f.Duration {
		return fmt.Errorf("every: %v must exceed duration %v", f.Every, f.Duration)
	}
	return nil
}

// GenerateScenario returns n generated devices named sim-00001... with m
// interfaces each and communities equal to their names, for load tests.
func GenerateScenario(n, m int) (*Scenario, error) {
	if n < 1 {
		return nil, fmt.Errorf("generate scenario: devices: %d, want at least 1", n)
	}
	sc := &Scenario{Source: fmt.Sprintf("generated %d devices", n)}
	sc.Devices = make([]DeviceSpec, n)
	for i := range sc.Devices {
		name := fmt.Sprintf("sim-%05d", i+1)
		sc.Devices[i] = DeviceSpec{Name: name, Interfaces: m, Seed: int64(i + 1)}
	}
	if err := sc.Validate(); err != nil {
		return nil, err
	}
	return sc, nil
}

// RecordingsIn returns one device per .snmprec or .snmpwalk file in dir,
// named and with community equal to the file's base name without extension,
// sorted by name.
func RecordingsIn(dir string) ([]DeviceSpec, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list recordings: %w", err)
	}
	var out []DeviceSpec
	for _, e := range ents {
		ext := filepath.Ext(e.Name())
		if e.IsDir() || (ext != ".snmprec" && ext != ".snmpwalk") {
			continue
		}
		name := strings.TrimSuffix(e.Name(), ext)
		out = append(out, DeviceSpec{Name: name, SNMPRec: filepath.Join(dir, e.Name())})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("list recordings %s: no .snmprec or .snmpwalk files", dir)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
