// Package e2e holds the whole-repository checks: the import rules of
// STYLE.md, and the end-to-end tests, which build the real binaries, start
// Debian's net-snmp snmpd as the device, the controller and the agent as
// processes on loopback sockets, and check what an operator would see
// through the controller's gRPC API.
package e2e
