package config

import (
	"fmt"
	"io"
	"log/slog"
)

// redacted is what a Secret prints as, wherever it is printed.
const redacted = "<secret>"

// Secret is a string that must not leak into logs, dumps or API answers: it
// prints, formats, logs and marshals as "<secret>". Use string(s) where the
// real value is needed (handing the community to the poller).
type Secret string

// String returns "<secret>".
func (s Secret) String() string { return redacted }

// GoString returns "<secret>" so that %#v does not leak either.
func (s Secret) GoString() string { return redacted }

// Format prints "<secret>" for every verb; without it fmt would print the raw
// string for verbs a Stringer does not cover, such as %d.
func (s Secret) Format(f fmt.State, verb rune) { _, _ = io.WriteString(f, redacted) }

// LogValue makes slog print "<secret>".
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalYAML writes "<secret>".
func (s Secret) MarshalYAML() (any, error) { return redacted, nil }

// MarshalJSON writes "<secret>".
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText writes "<secret>"; encoders that use encoding.TextMarshaler
// (map keys, XML, some loggers) redact too.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }
