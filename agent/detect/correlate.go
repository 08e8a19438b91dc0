package detect

import (
	"slices"
	"sort"
	"time"

	"github.com/netaiops/netaiops/collector"
)

// Correlation decides, when an issue opens, whether another open issue
// explains it. Such an issue is suppressed: kept with CausedBy set to the
// root's fingerprint (the root of a chain, never an intermediate), and not
// returned. It is released (returned as opened) only if it outlives its
// cause by Settle. What causes what:
//
//   - device_unreachable and device_rebooted of a device cause the issues
//     of its interfaces and metrics, for as long as they are open and for
//     Settle after the device is back;
//   - interface_flapping causes interface_down and metric issues of the
//     same interface, and interface_down the metric issues;
//   - interface_down or interface_flapping of a parent's port, or the
//     parent's own device_unreachable or reboot, cause the
//     device_unreachable of a child behind it (Options.Topology, or LLDP
//     oriented from Options.Roots).

// maxNeighbours bounds the LLDP neighbours kept per device.
const maxNeighbours = 1024

// neighbour is one LLDP neighbour: the local port and the remote device
// and port.
type neighbour struct {
	port, remote, remotePort, remotePortDesc string
}

// portObject maps an LLDP port id (or, failing that, its description) to
// the name interface issues use on the device: LLDP may name a port by its
// ifName, its ifDescr or its ifAlias-like description.
func (d *deviceState) portObject(id, desc string) string {
	if _, ok := d.ifaces[id]; ok {
		return id
	}
	objects := make([]string, 0, len(d.ifaces))
	for o := range d.ifaces {
		objects = append(objects, o)
	}
	sort.Strings(objects)
	for _, want := range [...]string{id, desc} {
		if want == "" {
			continue
		}
		for _, o := range objects {
			if k := d.ifaces[o]; k.name == want || k.descr == want {
				return o
			}
		}
	}
	return id
}

// canCause reports whether issues of kind can be the cause of others.
func canCause(kind string) bool {
	switch kind {
	case KindDeviceUnreachable, KindDeviceRebooted, KindInterfaceDown, KindInterfaceFlapping:
		return true
	}
	return false
}

// rootOf is the fingerprint at the root of is's chain of causes.
func rootOf(is *Issue) string {
	if is.CausedBy != "" {
		return is.CausedBy
	}
	return is.Fingerprint
}

// cause returns the root fingerprint of the issue that explains an issue of
// kind on device (about interface iface, or "") opening at at, or "".
func (e *Engine) cause(d *deviceState, kind, device, iface string, at time.Time) string {
	switch kind {
	case KindDeviceRebooted:
		return ""
	case KindDeviceUnreachable:
		return e.upstreamCause(device, at)
	}
	if is := d.open[Fingerprint(KindDeviceUnreachable, device, "")]; is != nil {
		return rootOf(is)
	}
	if at.Before(d.quietUntil) {
		return d.quietCause
	}
	if iface == "" {
		return ""
	}
	for _, k := range [...]string{KindInterfaceFlapping, KindInterfaceDown} {
		if k == kind || (kind == KindInterfaceFlapping && k == KindInterfaceDown) {
			continue // a flapping interface is not explained by its being down
		}
		if is := d.open[Fingerprint(k, device, iface)]; is != nil {
			return rootOf(is)
		}
	}
	return ""
}

// upstreamCause returns the root of what makes device unreachable through
// its parents: a parent's port down or flapping, the parent unreachable or
// rebooting, open or resolved less than Settle ago; or "".
func (e *Engine) upstreamCause(device string, at time.Time) string {
	parents := e.parents(device)
	recent := func(pd *deviceState, fp string) string {
		if is := pd.open[fp]; is != nil {
			return rootOf(is)
		}
		if r, ok := pd.recent[fp]; ok && at.Sub(r.at) < e.opts.Settle {
			return r.root
		}
		return ""
	}
	for _, l := range parents {
		pd := e.devices[l.Parent]
		if pd == nil {
			continue
		}
		for _, k := range [...]string{KindInterfaceDown, KindInterfaceFlapping} {
			if r := recent(pd, Fingerprint(k, l.Parent, l.Port)); r != "" {
				return r
			}
		}
	}
	for _, l := range parents {
		pd := e.devices[l.Parent]
		if pd == nil {
			continue
		}
		if r := recent(pd, Fingerprint(KindDeviceUnreachable, l.Parent, "")); r != "" {
			return r
		}
		if at.Before(pd.quietUntil) && pd.quietCause != "" {
			return pd.quietCause
		}
	}
	return ""
}

// upstreamUndecided reports whether a parent of device may yet turn out to
// be the cause of its failures since since: not polled since then, or
// failing without being declared unreachable yet.
func (e *Engine) upstreamUndecided(device string, since time.Time) bool {
	for _, l := range e.parents(device) {
		pd := e.devices[l.Parent]
		if pd == nil {
			continue // not ours to poll: nothing to wait for
		}
		if !pd.lastPoll.After(since) {
			return true
		}
		if pd.failures > 0 && pd.open[Fingerprint(KindDeviceUnreachable, l.Parent, "")] == nil {
			return true
		}
	}
	return false
}

// settle ends one observation of device: it releases the device's
// suppressed issues whose cause is gone, forgets resolved roots older than
// Settle, and attributes to the device's root issues the unreachability of
// the devices behind it.
func (e *Engine) settle(c *changes, d *deviceState, device string, at time.Time) {
	e.sweepRestored(c, d, at)
	e.sweepTrapDevices(c, at)
	var held []string
	for fp := range d.held {
		held = append(held, fp)
	}
	sort.Strings(held)
	for _, fp := range held {
		is := d.open[fp]
		cause := e.cause(d, is.Kind, device, d.ifaceOf[fp], at)
		if cause != "" {
			is.CausedBy = cause
			continue
		}
		delete(d.held, fp)
		is.CausedBy = ""
		is.LastSeen = at
		e.stats.Released++
		c.add(Opened, at, is)
	}
	for fp, r := range d.recent {
		if at.Sub(r.at) >= e.opts.Settle {
			delete(d.recent, fp)
		}
	}
	// Only a device with an open issue that can cause others has anything
	// to attribute; most polls skip the topology entirely.
	for _, is := range d.open {
		if canCause(is.Kind) {
			e.attribute(c, device, at, map[string]bool{device: true})
			break
		}
	}
}

// attribute marks the open device_unreachable issues of the devices behind
// device that no cause explained yet with the cause they have now, and
// goes on down the tree. A returned issue gets an update with CausedBy.
func (e *Engine) attribute(c *changes, device string, at time.Time, visited map[string]bool) {
	for _, child := range e.children(device) {
		if visited[child] {
			continue
		}
		visited[child] = true
		cd := e.devices[child]
		if cd == nil {
			continue
		}
		is := cd.open[Fingerprint(KindDeviceUnreachable, child, "")]
		if is == nil {
			continue
		}
		if is.CausedBy == "" {
			cause := e.upstreamCause(child, at)
			if cause == "" || cause == is.Fingerprint {
				continue
			}
			is.CausedBy = cause
			if !cd.held[is.Fingerprint] {
				e.stats.Attributed++
				c.add(Updated, at, is)
			}
		}
		e.attribute(c, child, at, visited)
	}
}

// SetTopology replaces the configured parent/child links.
func (e *Engine) SetTopology(links []Link) {
	e.opts.Topology = slices.Clone(links)
	e.topo.dirty = true
}

// topology is the parent/child relation between devices, built from the
// configured links and LLDP neighbours, rebuilt when either changes.
type topology struct {
	dirty    bool
	parents  map[string][]Link
	children map[string][]string
	byName   map[string]string // sysName -> device
}

func (e *Engine) parents(device string) []Link {
	e.buildTopology()
	return e.topo.parents[device]
}

func (e *Engine) children(device string) []string {
	e.buildTopology()
	return e.topo.children[device]
}

// buildTopology orients LLDP adjacencies away from the roots, breadth
// first; configured links win over learnt ones.
func (e *Engine) buildTopology() {
	t := &e.topo
	if !t.dirty {
		return
	}
	t.dirty = false
	if len(e.opts.Topology) == 0 && len(e.opts.Roots) == 0 {
		t.parents, t.children = nil, nil // nothing to build from
		return
	}
	t.parents = map[string][]Link{}
	t.children = map[string][]string{}
	t.byName = map[string]string{}
	names := make([]string, 0, len(e.devices))
	for name, d := range e.devices {
		names = append(names, name)
		if d.sysName != "" {
			t.byName[d.sysName] = name
		}
	}
	sort.Strings(names)
	resolve := func(remote string) string {
		if _, ok := e.devices[remote]; ok {
			return remote
		}
		return t.byName[remote]
	}
	configured := map[string]bool{}
	for _, l := range e.opts.Topology {
		t.parents[l.Child] = append(t.parents[l.Child], l)
		configured[l.Child] = true
	}
	// Undirected adjacency: device -> (neighbour, port on device).
	type edge struct{ peer, port string }
	adj := map[string][]edge{}
	for _, name := range names {
		for _, n := range e.devices[name].lldp {
			peer := resolve(n.remote)
			if peer == "" || peer == name {
				continue
			}
			adj[name] = append(adj[name], edge{peer, n.port})
			adj[peer] = append(adj[peer], edge{name, e.devices[peer].portObject(n.remotePort, n.remotePortDesc)})
		}
	}
	if len(e.opts.Roots) > 0 && len(adj) > 0 {
		seen := map[string]bool{}
		queue := slices.Clone(e.opts.Roots)
		for _, r := range queue {
			seen[r] = true
		}
		for len(queue) > 0 {
			dev := queue[0]
			queue = queue[1:]
			for _, ed := range adj[dev] {
				if seen[ed.peer] {
					continue
				}
				seen[ed.peer] = true
				if !configured[ed.peer] {
					t.parents[ed.peer] = append(t.parents[ed.peer], Link{Parent: dev, Port: ed.port, Child: ed.peer})
				}
				queue = append(queue, ed.peer)
			}
		}
	}
	for child, ls := range t.parents {
		for _, l := range ls {
			t.children[l.Parent] = append(t.children[l.Parent], child)
		}
	}
	for p := range t.children {
		sort.Strings(t.children[p])
	}
}

// neighbours learns the device's sysName and LLDP neighbours from a poll,
// after its interfaces. LLDP rows are Info samples named lldpRemSysName
// with the labels lldpLocPortId and lldpLocPortDesc (or ifName: the local
// port), lldpRemSysName (the neighbour's sysName or target name) and
// lldpRemPortId, lldpRemPortDesc (its port). Ports are mapped to interface
// names by ifName or ifDescr. A poll without LLDP rows keeps the
// neighbours known.
func (e *Engine) neighbours(d *deviceState, device string, samples []collector.Sample) {
	var ns []neighbour
	for _, s := range samples {
		switch s.Metric {
		case "sysName":
			if n := s.Labels.Get("sysName"); n != "" && n != d.sysName {
				d.sysName = n
				e.topo.dirty = true
			}
		case "lldpRemSysName":
			port := s.Labels.Get("ifName")
			if port == "" {
				port = d.portObject(s.Labels.Get("lldpLocPortId"), s.Labels.Get("lldpLocPortDesc"))
			}
			n := neighbour{port: port, remote: s.Labels.Get("lldpRemSysName"), remotePort: s.Labels.Get("lldpRemPortId"),
				remotePortDesc: s.Labels.Get("lldpRemPortDesc")}
			if n.remote != "" && len(ns) < maxNeighbours {
				ns = append(ns, n)
			}
		}
	}
	if len(ns) == 0 {
		return
	}
	sort.Slice(ns, func(i, j int) bool {
		if ns[i].port != ns[j].port {
			return ns[i].port < ns[j].port
		}
		return ns[i].remote < ns[j].remote
	})
	if !slices.Equal(ns, d.lldp) {
		d.lldp = ns
		e.topo.dirty = true
	}
}
