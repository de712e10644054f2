package config

import (
	"strconv"
	"strings"
)

// gototem-only keys. corosync 3.1.7 stores every key it is given and reads only those it
// knows (coroparse.c puts an unknown totem.* or nodelist.node.N.* key in icmap as a
// string, totemconfig.c never looks at it), so a file with these keys still loads in real
// corosync, which then runs the standard ring: that is why the accelerated ring is refused
// unless every node of the nodelist is declared a gototem node.
//
//	totem {
//		gototem_accelerated: yes         # the accelerated ring (srp/accel.go), default no
//		gototem_accelerated_window: 17   # messages of a visit sent after the token
//	}
//	nodelist { node { ...; gototem_node: yes } }   # on every node
//
// A nodelist whose every node says gototem_node: yes also changes two defaults: window_size
// and max_messages (GototemWindowSize, GototemMaxMessages) when the file sets neither.
const (
	keyAccelerated       = "gototem_accelerated"
	keyAcceleratedWindow = "gototem_accelerated_window"
	keyGototemNode       = "gototem_node"
)

// DefaultAcceleratedWindow is gototem_accelerated_window's default: the token leaves once
// its holder has sent this many fewer than the visit's messages, i.e. with corosync's
// max_messages 17, all of them go after it.
const DefaultAcceleratedWindow = 17

// The token window of a ring whose every nodelist node is declared gototem_node: yes, when
// the file sets neither window_size nor max_messages (a value the file sets is kept).
// corosync's defaults (50 and 17) bound one sender to 17 datagrams per rotation, and a flood
// on a LAN waits for the token, not for CPU: in the netns lab (issue 14, 3 nodes, one sender)
// gototem's 1 KiB and 8 KiB floods ran 2.3× faster at 300/150 than at 50/17, with p99
// agreed latency still under 5 ms. A corosync node runs its own defaults whatever gototem
// chooses, and the token carries no window: the wider window needs the declaration only
// because it is a gototem-only ring's to take (a corosync node in a ring whose gototem
// nodes send 150 a visit would get a smaller share of the ring, nothing worse).
const (
	GototemWindowSize  = 300
	GototemMaxMessages = 150
)

// readGototem reads the gototem-only keys; it runs after the nodelist and totem are read.
func (c *Config) readGototem(d *diag) {
	for i := range c.Nodes {
		n := &c.Nodes[i]
		n.Gototem = c.yesNoWarn(d, "nodelist.node."+strconv.Itoa(n.Pos)+"."+keyGototemNode, false)
	}
	t := &c.Totem
	t.GototemRing = c.allGototem()
	if t.GototemRing {
		if !c.keys.has("totem.window_size") {
			t.WindowSize = GototemWindowSize
		}
		if !c.keys.has("totem.max_messages") {
			t.MaxMessages = min(GototemMaxMessages, t.WindowSize)
		}
	}
	on := c.yesNoWarn(d, "totem."+keyAccelerated, false)
	window := DefaultAcceleratedWindow
	if v, ok := c.keys.str("totem." + keyAcceleratedWindow); ok {
		w, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || w < 1 || w > 16384 {
			d.errorf(c.keys.line("totem."+keyAcceleratedWindow), "totem.%s %q: must be a number 1..16384", keyAcceleratedWindow, v)
		} else {
			window = w
		}
	}
	if !on {
		return
	}
	line := c.keys.line("totem." + keyAccelerated)
	if len(c.Nodes) == 0 {
		d.errorf(line, "totem.%s needs a nodelist whose every node says %s: yes (a ring with a corosync node must run the standard ring)", keyAccelerated, keyGototemNode)
		return
	}
	for _, n := range c.Nodes {
		if !n.Gototem {
			d.errorf(line, "totem.%s is refused: nodelist node %d (nodeid %d) is not declared %s: yes, and a ring with a corosync node must run the standard ring", keyAccelerated, n.Pos, n.NodeID, keyGototemNode)
			return
		}
	}
	t.AcceleratedWindow = window
}

// allGototem reports whether the file has a nodelist whose every node says gototem_node: yes.
func (c *Config) allGototem() bool {
	if len(c.Nodes) == 0 {
		return false
	}
	for _, n := range c.Nodes {
		if !n.Gototem {
			return false
		}
	}
	return true
}
