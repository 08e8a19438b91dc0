// Package snmpsim is an SNMP v1/v2c device simulator: many devices behind one
// UDP socket, selected by community string, answering Get, GetNext and
// GetBulk from precomputed, numerically sorted OID tables.
//
// Devices are either generated (system group, IF-MIB ifTable and ifXTable
// with counters that grow along a deterministic, seeded diurnal curve) or
// served from recorded walks (snmpsim .snmprec files and net-snmp
// "snmpwalk -On" output). Scripted faults (an interface going oper-down, a
// device going silent, a reboot) are evaluated at request time from the
// server's injectable clock, relative to the simulator's start, so tests need
// no sleeps and tables are never rebuilt.
//
// A scenario file (YAML, unknown keys rejected) lists the devices:
//
//	devices:
//	  - name: core-sw1          # community defaults to the name
//	    interfaces: 24          # a generated device...
//	    seed: 1                 # ...whose numbers follow this seed
//	    faults:
//	      - {kind: interface_down, interface: 3, at: 20s, duration: 60s, every: 180s}
//	      - {kind: unreachable, at: 30s, duration: 90s}
//	      - {kind: reboot, at: 150s, every: 300s}
//	  - name: lab-fw
//	    community: secret
//	    snmprec: recordings/fw.snmprec   # a recorded device, relative to the file
//
// Packets are decoded and encoded with gosnmp. The package owns no flags; the
// netaiops-snmpsim command wires flags to a Scenario and a Server.
package snmpsim
