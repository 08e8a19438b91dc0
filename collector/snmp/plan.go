package snmp

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/gosnmp/gosnmp"

	"github.com/netaiops/netaiops/collector"
	"github.com/netaiops/netaiops/collector/snmp/profile"
)

// Plan is what a poll reads, compiled from profiles: the scalars to Get and
// the tables to walk. Compile it once per target (or once per profile set)
// and share it; it is read-only.
type Plan struct {
	names   []string
	scalars []*object
	byOID   map[string]*object // scalars by OID with the leading dot
	tables  []*table
	// joins: index names whose rows lend their labels to rows of other tables
	fallbacks [][2]string // label, fallback label
	// nScalarCounters: counter scalars, each a slot in the rate computer.
	nScalarCounters int
}

// object is a compiled scalar or column.
type object struct {
	profile.Object
	oid   string // with gosnmp's leading dot
	rate  string // counters: the name of the rate sample, Name + RateSuffix
	scale float64
	table *table
	pos   int // column position in its table (scalars: in the plan)
	cpos  int // position among the counters of its table (or of the scalars)
}

type table struct {
	name      string
	root      string // walk root, with the leading dot
	index     []string
	cols      map[string]*object // by column OID
	colLens   []int              // distinct column OID lengths in sub-identifiers
	ncols     int
	ncounters int // counter columns: the rate computer keeps one slot each
	// ownLabels: the table has one index name, so its label columns join
	// rows of other tables with an index component of that name.
	joins bool
}

// Names returns the names of the profiles the plan was compiled from.
func (p *Plan) Names() []string { return p.names }

// Compile builds a Plan from profiles. A scalar or table in several
// profiles is read once.
func Compile(profiles []*profile.Profile) (*Plan, error) {
	p := &Plan{byOID: map[string]*object{}}
	tables := map[string]*table{}
	metricNames := map[string]string{}
	claim := func(name, where string) error {
		if prev, dup := metricNames[name]; dup && prev != where {
			return fmt.Errorf("compile profiles: %s is defined by %s and %s", name, prev, where)
		}
		metricNames[name] = where
		return nil
	}
	for _, pr := range profiles {
		if err := pr.Validate(); err != nil {
			return nil, fmt.Errorf("compile profile %s: %w", pr.Name, err)
		}
		p.names = append(p.names, pr.Name)
		for _, s := range pr.Scalars {
			oid := "." + strings.TrimPrefix(s.OID, ".")
			if _, dup := p.byOID[oid]; dup {
				continue
			}
			if err := claim(s.Name, pr.Name); err != nil {
				return nil, err
			}
			o := &object{Object: s, oid: oid, scale: scaleOf(s.Scale), pos: len(p.scalars)}
			if s.Type == profile.Counter {
				o.rate = s.Name + RateSuffix
				o.cpos = p.nScalarCounters
				p.nScalarCounters++
			}
			p.scalars = append(p.scalars, o)
			p.byOID[oid] = o
		}
		for _, t := range pr.Tables {
			root := "." + strings.TrimPrefix(t.OID, ".")
			if _, dup := tables[root]; dup {
				continue
			}
			tb := &table{name: t.Name, root: root, index: t.Index, cols: map[string]*object{}, joins: len(t.Index) == 1}
			for i, c := range t.Columns {
				if err := claim(c.Name, pr.Name); err != nil {
					return nil, err
				}
				oid := "." + strings.TrimPrefix(c.OID, ".")
				col := &object{Object: c, oid: oid, scale: scaleOf(c.Scale), table: tb, pos: i}
				if c.Type == profile.Counter {
					col.rate = c.Name + RateSuffix
					col.cpos = tb.ncounters
					tb.ncounters++
				}
				tb.cols[oid] = col
				n := strings.Count(oid, ".")
				if !containsInt(tb.colLens, n) {
					tb.colLens = append(tb.colLens, n)
				}
				if c.Fallback != "" {
					p.fallbacks = append(p.fallbacks, [2]string{c.Name, c.Fallback})
				}
			}
			tb.ncols = len(t.Columns)
			tables[root] = tb
			p.tables = append(p.tables, tb)
		}
	}
	return p, nil
}

func containsInt(s []int, n int) bool {
	for _, x := range s {
		if x == n {
			return true
		}
	}
	return false
}

func scaleOf(s float64) float64 {
	if s == 0 {
		return 1
	}
	return s
}

var (
	defaultPlanOnce sync.Once
	defaultPlan     *Plan
	defaultPlanErr  error
)

// DefaultPlan is the plan of profile.Default (system and if_mib).
func DefaultPlan() (*Plan, error) {
	defaultPlanOnce.Do(func() {
		ps, err := profile.Resolve(nil, nil)
		if err != nil {
			defaultPlanErr = err
			return
		}
		defaultPlan, defaultPlanErr = Compile(ps)
	})
	return defaultPlan, defaultPlanErr
}

// column finds the column of a varbind of t and returns it with the index
// (the OID suffix after the column), or nil.
func (t *table) column(name string) (*object, string) {
	for _, n := range t.colLens {
		// The column OID is name up to its n-th dot (".1.3" has 2).
		i, dots := 0, 0
		for i = 0; i < len(name); i++ {
			if name[i] == '.' {
				if dots == n {
					break
				}
				dots++
			}
		}
		if i >= len(name)-1 {
			continue
		}
		if c := t.cols[name[:i]]; c != nil {
			return c, name[i+1:]
		}
	}
	return nil, ""
}

// value is one decoded number of a row.
type value struct {
	col  *object
	v    float64
	bits uint8 // counter width: 32, 64, or 0 when unknown
}

// row is one table row (or the scalars, as a row without index).
type row struct {
	table  *table
	index  string
	labels []collector.Label
	values []value
}

// result collects one poll's decoded data. Only one goroutine adds to it at
// a time (the poll serializes its walkers' output by table).
type result struct {
	plan    *Plan
	scalars row
	rows    []map[string]*row // per table, by index
	// Varbinds dropped as undecodable and the first reason, per walker's
	// share: [0] scalars, [1+i] table i, so that walkers never share a slot.
	bad    []int
	badWhy []string
}

func newResult(p *Plan) *result {
	r := &result{plan: p, rows: make([]map[string]*row, len(p.tables)),
		bad: make([]int, len(p.tables)+1), badWhy: make([]string, len(p.tables)+1)}
	for i := range r.rows {
		r.rows[i] = map[string]*row{}
	}
	return r
}

func (r *result) drop(slot int, v *gosnmp.SnmpPDU, why string) {
	r.bad[slot]++
	if r.badWhy[slot] == "" {
		r.badWhy[slot] = v.Name + ": " + why
	}
}

// firstBad returns the first reason a varbind was dropped.
func (r *result) firstBad() string {
	for _, w := range r.badWhy {
		if w != "" {
			return w
		}
	}
	return ""
}

// addScalar decodes one scalar varbind.
func (r *result) addScalar(v *gosnmp.SnmpPDU) {
	o := r.plan.byOID[v.Name]
	if o == nil {
		r.drop(0, v, "not asked for")
		return
	}
	r.add(0, &r.scalars, o, v)
}

// addColumn decodes one varbind of table ti.
func (r *result) addColumn(ti int, v *gosnmp.SnmpPDU) {
	t := r.plan.tables[ti]
	c, index := t.column(v.Name)
	if c == nil {
		return // a column no profile asked for: walking the table reads it too
	}
	rw := r.rows[ti][index]
	if rw == nil {
		// Sized for every column at once: growing it value by value is
		// most of a poll's garbage after gosnmp's own.
		rw = &row{table: t, index: index, values: make([]value, 0, t.ncols)}
		r.rows[ti][index] = rw
	}
	r.add(ti+1, rw, c, v)
}

func (r *result) add(slot int, rw *row, o *object, v *gosnmp.SnmpPDU) {
	switch o.Type {
	case profile.Label, profile.Info:
		s, ok := textOf(v)
		if !ok {
			r.drop(slot, v, "want text, got "+v.Type.String())
			return
		}
		rw.labels = append(rw.labels, collector.Label{Name: o.Name, Value: s})
		if o.Type == profile.Info {
			rw.values = append(rw.values, value{col: o, v: 1})
		}
	default:
		f, bits, ok := numberOf(v)
		if !ok {
			r.drop(slot, v, "want a number, got "+v.Type.String())
			return
		}
		rw.values = append(rw.values, value{col: o, v: f * o.scale, bits: bits})
	}
}

// numberOf decodes any SNMP number, and numeric text (UCD-SNMP's laLoad is
// "0.15"; some devices send numbers as strings).
func numberOf(v *gosnmp.SnmpPDU) (float64, uint8, bool) {
	switch x := v.Value.(type) {
	case int:
		return float64(x), 0, true
	case int64:
		return float64(x), 0, true
	case uint:
		if v.Type == gosnmp.Counter32 {
			return float64(x), 32, true
		}
		return float64(x), 0, true
	case uint32:
		if v.Type == gosnmp.Counter32 {
			return float64(x), 32, true
		}
		return float64(x), 0, true
	case uint64:
		if v.Type == gosnmp.Counter64 {
			return float64(x), 64, true
		}
		return float64(x), 0, true
	case float32:
		f := float64(x)
		return f, 0, !math.IsNaN(f) && !math.IsInf(f, 0)
	case float64:
		return x, 0, !math.IsNaN(x) && !math.IsInf(x, 0)
	case []byte:
		s := strings.TrimSpace(strings.TrimRight(string(x), "\x00"))
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, 0, false
		}
		return f, 0, true
	}
	return 0, 0, false
}

// textOf renders a varbind as label text: printable strings as they are
// (trailing NULs dropped, invalid UTF-8 replaced), binary strings (MAC
// addresses in LLDP) as hex pairs, numbers and OIDs in decimal.
func textOf(v *gosnmp.SnmpPDU) (string, bool) {
	switch x := v.Value.(type) {
	case []byte:
		s := strings.TrimRight(string(x), "\x00")
		if printable(s) {
			return s, true
		}
		if !utf8.ValidString(s) && mostlyText(s) {
			return strings.ToValidUTF8(s, "\uFFFD"), true
		}
		return hexString(x), true
	case string:
		return strings.TrimPrefix(x, "."), v.Type == gosnmp.ObjectIdentifier || v.Type == gosnmp.IPAddress
	case int:
		return strconv.Itoa(x), true
	case uint, uint32, uint64, int64:
		return fmt.Sprint(x), true
	}
	return "", false
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) && r != '\t' {
			return false
		}
	}
	return true
}

// mostlyText tells Latin-1 or broken UTF-8 text from binary data.
func mostlyText(s string) bool {
	ctl := 0
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
			ctl++
		}
	}
	return ctl == 0
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, len(b)*3)
	for i, c := range b {
		if i > 0 {
			out = append(out, ':')
		}
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// indexLabels splits an index into labels: one sub-identifier per name, the
// last name takes the rest.
func indexLabels(names []string, index string, out []collector.Label) []collector.Label {
	rest := index
	for i, n := range names {
		var part string
		if i == len(names)-1 {
			part = rest
		} else {
			part, rest, _ = strings.Cut(rest, ".")
		}
		out = append(out, collector.Label{Name: n, Value: part})
	}
	return out
}

// counterSample is a counter as read, with its width, for the rate computer.
type counterSample struct {
	idx  int    // position in samples
	bits uint8  // 32, 64, or 0 when unknown
	row  rowKey // with col.pos, identifies the series across polls
	col  *object
}

// rowKey identifies a table row (or, with a nil table, the scalars).
type rowKey struct {
	t     *table
	index string
}

// samples turns the result into samples, scalars first, then every table's
// rows in index order, each row's values in column order.
func (r *result) samples(device string, at collector.Sample) ([]collector.Sample, []counterSample) {
	p := r.plan
	// Labels that join: index name -> index value -> labels.
	joins := map[string]map[string][]collector.Label{}
	for ti, t := range p.tables {
		if !t.joins {
			continue
		}
		m := joins[t.index[0]]
		if m == nil {
			m = map[string][]collector.Label{}
			joins[t.index[0]] = m
		}
		for idx, rw := range r.rows[ti] {
			if len(rw.labels) > 0 {
				m[idx] = append(m[idx], rw.labels...)
			}
		}
	}
	// Room for what derive and the rate computer append (a rate per
	// counter, two utilizations per row, a few derived gauges), so that
	// the poll's samples are allocated once.
	n, nc, nrows := len(r.scalars.values), countersOf(r.scalars.values), 0
	for ti := range p.tables {
		for _, rw := range r.rows[ti] {
			n += len(rw.values)
			nc += countersOf(rw.values)
		}
		nrows += len(r.rows[ti])
	}
	out := make([]collector.Sample, 0, n+nc+2*nrows+4)
	counters := make([]counterSample, 0, nc)
	emit := func(rw *row, labels collector.Labels) {
		sort.SliceStable(rw.values, func(i, j int) bool { return rw.values[i].col.pos < rw.values[j].col.pos })
		for _, v := range rw.values {
			s := at
			s.Device, s.Metric, s.Value = device, v.col.Name, v.v
			switch v.col.Type {
			case profile.Counter:
				s.Kind = collector.Counter
				counters = append(counters, counterSample{idx: len(out), bits: v.bits, row: rowKey{rw.table, rw.index}, col: v.col})
			case profile.Info:
				s.Kind = collector.Info
			default:
				s.Kind = collector.Gauge
			}
			s.Labels = labels
			if v.col.Type == profile.Info {
				s.Labels = withLabel(labels, v.col.Name, rw.labels)
			}
			out = append(out, s)
		}
	}
	emit(&r.scalars, nil)
	for ti, t := range p.tables {
		idxs := make([]string, 0, len(r.rows[ti]))
		for idx := range r.rows[ti] {
			idxs = append(idxs, idx)
		}
		sortOIDs(idxs)
		for _, idx := range idxs {
			rw := r.rows[ti][idx]
			if len(rw.values) == 0 {
				continue // a row of labels only: it lends them to others
			}
			ls := indexLabels(t.index, idx, make([]collector.Label, 0, len(t.index)+len(rw.labels)+4))
			ls = appendLabels(ls, rw.labels)
			for i, name := range t.index {
				if m := joins[name]; m != nil {
					ls = appendLabels(ls, m[ls[i].Value])
				}
			}
			for _, fb := range p.fallbacks {
				if labelValue(ls, fb[0]) == "" {
					if v := labelValue(ls, fb[1]); v != "" {
						ls = setLabel(ls, fb[0], v)
					}
				}
			}
			emit(rw, collector.NewLabels(flatten(ls)...))
		}
	}
	return out, counters
}

func countersOf(vs []value) int {
	n := 0
	for _, v := range vs {
		if v.col.Type == profile.Counter {
			n++
		}
	}
	return n
}

// appendLabels adds labels whose name is not there yet, skipping empty values.
func appendLabels(ls []collector.Label, add []collector.Label) []collector.Label {
	for _, l := range add {
		if l.Value != "" && labelValue(ls, l.Name) == "" && !hasLabel(ls, l.Name) {
			ls = append(ls, l)
		}
	}
	return ls
}

func hasLabel(ls []collector.Label, name string) bool {
	for _, l := range ls {
		if l.Name == name {
			return true
		}
	}
	return false
}

func labelValue(ls []collector.Label, name string) string {
	for _, l := range ls {
		if l.Name == name {
			return l.Value
		}
	}
	return ""
}

func setLabel(ls []collector.Label, name, value string) []collector.Label {
	for i := range ls {
		if ls[i].Name == name {
			ls[i].Value = value
			return ls
		}
	}
	return append(ls, collector.Label{Name: name, Value: value})
}

func flatten(ls []collector.Label) []string {
	out := make([]string, 0, 2*len(ls))
	for _, l := range ls {
		out = append(out, l.Name, l.Value)
	}
	return out
}

// withLabel returns labels plus the info column's own text (for scalars,
// which have no row labels otherwise).
func withLabel(labels collector.Labels, name string, rowLabels []collector.Label) collector.Labels {
	if labels.Get(name) != "" {
		return labels
	}
	v := labelValue(rowLabels, name)
	return collector.NewLabels(append(flatten(labels), name, v)...)
}

// sortOIDs sorts dotted OIDs (or indexes) numerically.
func sortOIDs(s []string) {
	sort.Slice(s, func(i, j int) bool { return compareOIDs(s[i], s[j]) < 0 })
}

// PlanFor compiles the plan of the named profiles, looked up in user (from
// profile.LoadFiles) and then among the shipped ones; no names: the default
// profiles. Compile once per distinct list and share the Plan.
func PlanFor(names []string, user map[string]*profile.Profile) (*Plan, error) {
	ps, err := profile.Resolve(names, user)
	if err != nil {
		return nil, fmt.Errorf("plan %v: %w", names, err)
	}
	return Compile(ps)
}
