package limits

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTruncate(t *testing.T) {
	mark := TruncatedMark // 14 bytes: "…" is 3
	tests := []struct {
		s    string
		max  int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{strings.Repeat("x", 20), 16, "xx" + mark},
		{strings.Repeat("é", 10), 17, "é" + mark},  // 3 bytes for text: one é, not one and a half
		{strings.Repeat("é", 10), 18, "éé" + mark}, // 4 bytes: two é
		{strings.Repeat("x", 20), 14, mark},
		{strings.Repeat("x", 20), 5, "…[t"}, // below the mark: a prefix of it
		{strings.Repeat("x", 20), 2, ""},
		{"x", 0, ""},
	}
	for _, tt := range tests {
		got := Truncate(tt.s, tt.max)
		if got != tt.want || len(got) > tt.max || !utf8.ValidString(got) {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tt.s, tt.max, got, tt.want)
		}
	}
}

func TestIssueBytes(t *testing.T) {
	if got := IssueBytes(map[string]string{"ab": "cde", "": "f"}, "gh", "", "ijk"); got != 2+3+0+1+2+3 {
		t.Fatalf("IssueBytes = %d, want 11", got)
	}
}

// The limits must fit together: the largest fixed fields and the largest
// issue fit the sizes the docs promise.
func TestLimitsConsistent(t *testing.T) {
	fixed := MaxIDBytes + MaxAgentIDBytes + MaxKindBytes + MaxDeviceBytes + MaxObjectBytes + 2*MaxFingerprintBytes + MaxSummaryBytes
	if fixed >= MaxIssueBytes/2 {
		t.Errorf("fixed fields take %d bytes, half of MaxIssueBytes is %d", fixed, MaxIssueBytes/2)
	}
	// 100 issues of the largest size, with room for the encoding around
	// them, stay below half of gRPC's default 4 MiB message.
	if page := 100 * (MaxIssueBytes + 8*MaxAttributes + 256); page > 2<<20 {
		t.Errorf("a default page of the largest issues is %d bytes", page)
	}
}
