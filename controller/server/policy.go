package server

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/netaiops/netaiops/controller/auth"
	netaiopsv1 "github.com/netaiops/netaiops/gen/netaiops/v1"
)

// ProtectedPrefixes are the method prefixes the policy governs: a method
// under them that Policy does not list is denied. Health and reflection are
// outside them and need no credentials (they reveal only whether the
// controller serves and the public schema).
var ProtectedPrefixes = []string{"/netaiops."}

// Policy returns who may call each netaiops.v1 method.
func Policy() map[string]auth.Need {
	viewer, operator, admin := auth.Need{Role: auth.RoleViewer}, auth.Need{Role: auth.RoleOperator}, auth.Need{Role: auth.RoleAdmin}
	return map[string]auth.Need{
		netaiopsv1.ControlService_Connect_FullMethodName: {Agent: true},

		netaiopsv1.IssueService_ListIssues_FullMethodName:       viewer,
		netaiopsv1.IssueService_GetIssue_FullMethodName:         viewer,
		netaiopsv1.IssueService_WatchIssues_FullMethodName:      viewer,
		netaiopsv1.IssueService_AcknowledgeIssue_FullMethodName: operator,
		netaiopsv1.IssueService_ListIssueEvents_FullMethodName:  viewer,

		netaiopsv1.FleetService_ListAgents_FullMethodName:   viewer,
		netaiopsv1.FleetService_GetConfig_FullMethodName:    viewer,
		netaiopsv1.FleetService_ListConfigs_FullMethodName:  viewer,
		netaiopsv1.FleetService_PollTarget_FullMethodName:   operator,
		netaiopsv1.FleetService_SetConfig_FullMethodName:    admin,
		netaiopsv1.FleetService_DeleteConfig_FullMethodName: admin,
	}
}

// principal returns the caller the auth interceptors identified. A call
// without one did not pass the interceptors: it is refused, so that a
// server built without them fails closed.
func principal(ctx context.Context) (auth.Principal, error) {
	p, ok := auth.FromContext(ctx)
	if !ok {
		return auth.Principal{}, status.Error(codes.Unauthenticated, "no authenticated caller (the server runs without its auth interceptors)")
	}
	return p, nil
}
