package e2e

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/netaiops/netaiops"

// TestImportDirection keeps the one-way import rules of STYLE.md true: cmd ->
// agent | controller -> collector -> libraries; gen/ only at the edges.
func TestImportDirection(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	rules := []struct {
		pkg    string // package prefix the rule applies to
		except string // package prefix exempt from the rule
		bans   []string
		allow  []string // imports the bans would catch that are fine
		why    string
	}{
		{pkg: module + "/collector", bans: []string{module + "/agent", module + "/controller", module + "/gen", "google.golang.org/grpc"}, why: "collectors know nothing of issues, gRPC or the controller"},
		{pkg: module + "/agent/detect", bans: []string{module + "/gen", "google.golang.org/grpc", module + "/controller"}, why: "detection is pure computation"},
		{pkg: module + "/agent", except: module + "/agent/uplink", bans: []string{module + "/gen"}, why: "only agent/uplink speaks proto"},
		{pkg: module + "/agent/config", bans: []string{module + "/"}, allow: []string{module + "/collector/limits"},
			why: "config is a leaf (it may read collector/limits, the sizes the controller accepts, a leaf itself)"},
		{pkg: module + "/collector/limits", bans: []string{module + "/"}, why: "limits is a leaf: the agent's config and the controller share it"},
		{pkg: module + "/agent/outbox", bans: []string{module + "/agent/detect"}, why: "the outbox stores opaque records: the engine's types must not shape its files"},
		{pkg: module + "/controller", bans: []string{module + "/agent"}, why: "the controller never imports the agent"},
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, imports := fields[0], fields[1:]
		if pkg == module+"/collector" {
			for _, imp := range imports {
				if strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") {
					t.Errorf("%s imports %s: the domain types use the standard library only", pkg, imp)
				}
			}
		}
		for _, r := range rules {
			if !under(pkg, r.pkg) || (r.except != "" && under(pkg, r.except)) {
				continue
			}
			for _, imp := range imports {
				if slices.Contains(r.allow, imp) {
					continue
				}
				for _, ban := range r.bans {
					if under(imp, ban) || (strings.HasSuffix(ban, "/") && strings.HasPrefix(imp, ban)) {
						t.Errorf("%s imports %s: %s", pkg, imp, r.why)
					}
				}
			}
		}
	}
}

func under(pkg, prefix string) bool {
	return pkg == prefix || strings.HasPrefix(pkg, prefix+"/")
}
