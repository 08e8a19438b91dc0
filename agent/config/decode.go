package config

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// decoder walks a YAML node tree into a Config by the fields' yaml tags. It
// exists instead of yaml's own decoding so that every error carries the key
// path and the allowed keys, and so that Config knows which keys the file
// set (lines) when it fills defaults.
type decoder struct {
	file  string
	lines map[string]int // key path -> line, for every key the file set
	errs  []error
}

// maxAliasDepth bounds alias chains; config values never need nested aliases.
const maxAliasDepth = 8

var (
	durationType = reflect.TypeOf(time.Duration(0))
	secretType   = reflect.TypeOf(Secret(""))
)

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: n.Line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	case yaml.DocumentNode:
		return "a document"
	}
	return "an alias"
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// value decodes n into the value pointed to by out (a pointer) at key path.
func (d *decoder) value(n *yaml.Node, out any, path string, depth int) {
	d.decode(n, reflect.ValueOf(out).Elem(), path, depth)
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string, depth int) {
	for n.Kind == yaml.AliasNode {
		depth++
		if depth > maxAliasDepth || n.Alias == nil {
			d.errorf(n, path, "alias nested too deeply")
			return
		}
		n = n.Alias
	}
	if isNull(n) {
		return // "key:" with no value: same as leaving the key out
	}
	if path != "" {
		d.lines[path] = n.Line
	}
	t := v.Type()
	switch {
	case t == durationType:
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, path, "expected a duration such as 10s, got %s", kindName(n))
			return
		}
		dur, err := time.ParseDuration(n.Value)
		if err != nil {
			d.errorf(n, path, "bad duration %q: %v", n.Value, err)
			return
		}
		v.SetInt(int64(dur))
	case t == secretType:
		if sec, ok := d.decodeSecret(n, path); ok {
			v.SetString(string(sec))
		}
	case t.Kind() == reflect.Struct:
		d.mapping(n, v, path, depth)
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, path, "expected a list, got %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			d.lines[p] = item.Line
			d.decode(item, s.Index(i), p, depth)
		}
		v.Set(s)
	case t.Kind() == reflect.Map:
		d.stringMap(n, v, path, depth)
	case t.Kind() == reflect.Pointer:
		p := reflect.New(t.Elem())
		d.decode(n, p.Elem(), path, depth)
		v.Set(p)
	case t.Kind() == reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, path, "expected a string, got %s", kindName(n))
			return
		}
		v.SetString(n.Value)
	case t.Kind() == reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
			d.errorf(n, path, "expected true or false, got %s", kindName(n))
			return
		}
		v.SetBool(b)
	case t.Kind() == reflect.Int || t.Kind() == reflect.Uint32:
		var i int64
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&i) != nil {
			d.errorf(n, path, "expected an integer, got %s", kindName(n))
			return
		}
		if t.Kind() == reflect.Uint32 {
			if i < 0 || i > math.MaxUint32 {
				d.errorf(n, path, "must be between 0 and %d, got %d", uint32(math.MaxUint32), i)
				return
			}
			v.SetUint(uint64(i))
			return
		}
		v.SetInt(i)
	case t.Kind() == reflect.Float64:
		var f float64
		if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!int" && n.ShortTag() != "!!float") || n.Decode(&f) != nil ||
			math.IsNaN(f) || math.IsInf(f, 0) {
			d.errorf(n, path, "expected a number, got %s", kindName(n))
			return
		}
		v.SetFloat(f)
	default:
		// Only reachable if a field of an unsupported type is added to Config.
		d.errorf(n, path, "cannot decode into %s", t)
	}
}

// mapping decodes a YAML mapping into a struct, rejecting unknown and
// repeated keys.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string, depth int) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping with keys %s; got %s", strings.Join(knownKeys(v.Type()), ", "), kindName(n))
		return
	}
	t := v.Type()
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, path, "keys must be plain names, got %s", kindName(k))
			continue
		}
		p := join(path, k.Value)
		if k.Value == "<<" {
			d.errorf(k, p, "merge keys are not supported; write the keys out")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.errorf(k, p, "key repeated (first at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		f, ok := fieldByTag(t, k.Value)
		if !ok {
			d.errorf(k, p, "unknown key (known: %s)", strings.Join(knownKeys(t), ", "))
			continue
		}
		d.decode(val, v.FieldByIndex(f.Index), p, depth)
		if _, set := d.lines[p]; set {
			d.lines[p] = k.Line // errors point at the key, not its value's first line
		}
	}
}

// stringMap decodes a mapping of strings (labels).
func (d *decoder) stringMap(n *yaml.Node, v reflect.Value, path string, depth int) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping of names to strings, got %s", kindName(n))
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		for val.Kind == yaml.AliasNode && val.Alias != nil && depth < maxAliasDepth {
			val = val.Alias
			depth++
		}
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, path, "keys must be plain names, got %s", kindName(k))
			continue
		}
		p := join(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			d.errorf(k, p, "key repeated (first at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		if val.Kind != yaml.ScalarNode {
			d.errorf(val, p, "expected a string, got %s", kindName(val))
			continue
		}
		value := val.Value
		if isNull(val) {
			value = ""
		}
		m.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), reflect.ValueOf(value).Convert(v.Type().Elem()))
	}
	v.Set(m)
}

func fieldByTag(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.IsExported() && yamlName(f) == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func knownKeys(t reflect.Type) []string {
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		if f := t.Field(i); f.IsExported() {
			keys = append(keys, yamlName(f))
		}
	}
	return keys
}

func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "" {
		return strings.ToLower(f.Name)
	}
	return name
}
