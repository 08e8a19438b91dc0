package uplink_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/netaiops/netaiops/agent/detect"
	"github.com/netaiops/netaiops/agent/uplink"
	"github.com/netaiops/netaiops/collector/limits"
	"github.com/netaiops/netaiops/controller"
	netaiopsv1 "github.com/netaiops/netaiops/gen/netaiops/v1"
)

// TestOversizeOutboxEntryIsCut: an entry an older agent left in its outbox
// with a 7 MiB attribute and a long summary reaches the controller cut to
// its limits, marked as truncated, instead of being refused (which would
// block the log forever: every reconnect resends it).
func TestOversizeOutboxEntryIsCut(t *testing.T) {
	c := runCtl(t, func(*controller.Config) {})
	ic, _ := ctlClient(t, c.Addr().String())
	ob := newOutbox(t)
	old := mkChange(1)
	old.Issue.Summary = strings.Repeat("s", 5000)
	old.Issue.Attributes["evidence"] = strings.Repeat("x", 7<<20)
	for _, ch := range []detect.Change{old, mkChange(2)} {
		if _, err := uplink.Append(ob, ch); err != nil {
			t.Fatal(err)
		}
	}
	u, err := uplink.New(fastConfig(c.Addr().String()), ob, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	run(t, u)
	waitFor(t, 20*time.Second, "both events acked", func() bool { return u.Stats().Acked == 2 })
	resp, err := ic.GetIssue(context.Background(), &netaiopsv1.GetIssueRequest{Id: old.Issue.ID})
	if err != nil {
		t.Fatal(err)
	}
	is := resp.GetIssue()
	if n := len(is.GetAttributes()["evidence"]); n > limits.MaxAttributeValueBytes || len(is.GetSummary()) > limits.MaxSummaryBytes ||
		is.GetAttributes()[detect.AttrTruncated] != "summary,attributes[evidence]" || is.GetAttributes()["ifIndex"] != "1" {
		t.Fatalf("stored issue: evidence %d bytes, summary %d bytes, attributes %v", n, len(is.GetSummary()), is.GetAttributes()[detect.AttrTruncated])
	}
}
