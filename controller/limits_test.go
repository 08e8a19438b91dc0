package controller

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestHugeAgentIDIsNotEchoed: a hello naming a 7 MiB agent id that the
// credentials do not allow is PermissionDenied with a short message; the
// id is not echoed whole into the status (which no client could receive).
func TestHugeAgentIDIsNotEchoed(t *testing.T) {
	s := runSecured(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := hello(ctx, s.dialAgent(t, "edge-1"), strings.Repeat("x", 7<<20))
	wantCode(t, "edge-1 certificate, hello of a 7 MiB id", err, codes.PermissionDenied)
	if msg := status.Convert(err).Message(); len(msg) > 1024 || !strings.Contains(msg, `credentials are for agent "edge-1"`) {
		t.Errorf("message of %d bytes: %.200s", len(msg), msg)
	}
}
