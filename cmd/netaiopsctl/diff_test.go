package main

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"
)

// applyUnified applies a unified diff to a, checking each hunk's header
// (start and counts) and context against a.
func applyUnified(t *testing.T, a, diff string) string {
	t.Helper()
	x := splitLines(a)
	lines := splitLines(diff)
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "--- ") || !strings.HasPrefix(lines[1], "+++ ") {
		t.Fatalf("no file headers:\n%s", diff)
	}
	var out []string
	next := 0 // next line of x to copy
	for k := 2; k < len(lines); {
		var sa, na, sb, nb int
		if _, err := fmt.Sscanf(lines[k], "@@ -%d,%d +%d,%d @@", &sa, &na, &sb, &nb); err != nil {
			t.Fatalf("bad hunk header %q: %v", lines[k], err)
		}
		k++
		start := sa - 1
		if na == 0 {
			start = sa
		}
		if start < next {
			t.Fatalf("hunk %q overlaps the previous one", lines[k-1])
		}
		out = append(out, x[next:start]...)
		if len(out)+1 != sb && !(nb == 0 && len(out) == sb) {
			t.Errorf("hunk +%d: new side starts at line %d", sb, len(out)+1)
		}
		next = start
		gotA, gotB := 0, 0
		for k < len(lines) && !strings.HasPrefix(lines[k], "@@") {
			l := lines[k]
			switch l[0] {
			case ' ', '-':
				if next >= len(x) || x[next] != l[1:] {
					t.Fatalf("hunk line %q does not match a", l)
				}
				next++
				gotA++
				if l[0] == ' ' {
					out = append(out, l[1:])
					gotB++
				}
			case '+':
				out = append(out, l[1:])
				gotB++
			}
			k++
		}
		if gotA != na || gotB != nb {
			t.Errorf("hunk counts -%d +%d, header says -%d +%d", gotA, gotB, na, nb)
		}
	}
	out = append(out, x[next:]...)
	if len(out) == 0 {
		return ""
	}
	return strings.Join(out, "\n") + "\n"
}

func TestUnifiedDiff(t *testing.T) {
	if d := unifiedDiff("a", "b", "x\n", "x\n"); d != "" {
		t.Errorf("equal inputs: %q", d)
	}
	a := "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n13\n14\n15\n"
	b := "1\n2\nthree\n4\n5\n6\n7\n8\n9\n10\n11\n12\n13\n15\n16\n"
	want := "--- a\n+++ b\n@@ -1,6 +1,6 @@\n 1\n 2\n-3\n+three\n 4\n 5\n 6\n@@ -11,5 +11,5 @@\n 11\n 12\n 13\n-14\n 15\n+16\n"
	if d := unifiedDiff("a", "b", a, b); d != want {
		t.Errorf("two hunks:\n%s\nwant\n%s", d, want)
	}
	// Random edits: the diff applied to a gives b.
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 300; i++ {
		var xa, xb []string
		for j := 0; j < r.IntN(40); j++ {
			v := strconv.Itoa(r.IntN(8))
			switch r.IntN(4) {
			case 0:
				xa = append(xa, v)
			case 1:
				xb = append(xb, v)
			default:
				xa, xb = append(xa, v), append(xb, v)
			}
		}
		sa, sb := join(xa), join(xb)
		d := unifiedDiff("a", "b", sa, sb)
		if sa == sb {
			continue
		}
		if got := applyUnified(t, sa, d); got != sb {
			t.Fatalf("case %d: patch gives %q, want %q\n%s", i, got, sb, d)
		}
	}
}

func join(l []string) string {
	if len(l) == 0 {
		return ""
	}
	return strings.Join(l, "\n") + "\n"
}

func TestAgo(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	for d, want := range map[time.Duration]string{
		0: "just now", 45 * time.Second: "45s ago", 12 * time.Minute: "12m ago", 3 * time.Hour: "3h ago",
		47 * time.Hour: "47h ago", 72 * time.Hour: "3d ago", -5 * time.Minute: "in 5m",
	} {
		if got := ago(now.Add(-d), now); got != want {
			t.Errorf("ago(-%s) = %q, want %q", d, got, want)
		}
	}
	if got := ago(time.Time{}, now); got != "-" {
		t.Errorf("ago(zero) = %q", got)
	}
}
