package transport

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/gototem/gototem/srp"
)

// Kind selects the corosync transport whose sockets a Link reproduces.
type Kind uint8

const (
	// UDP is `transport: udp`: multicast (or broadcast) for multicasts, unicast tokens.
	UDP Kind = iota + 1
	// UDPU is `transport: udpu`: every multicast is a unicast copy to each nodelist member.
	UDPU
)

func (k Kind) String() string {
	switch k {
	case UDP:
		return "udp"
	case UDPU:
		return "udpu"
	case Knet:
		return "knet"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Protocol limits the transport enforces.
const (
	// DefaultPort is corosync's default mcastport for link 0.
	DefaultPort = 5405
	// DefaultNetMTU is corosync's netmtu default for udp/udpu.
	DefaultNetMTU = 1500
	// MaxDatagram is the largest UDP payload the kernel can carry without jumbograms (IPv6
	// allows 65527, IPv4 65507; the smaller one is used for both so a config behaves the
	// same on either family). corosync's own receive buffer (136 192 B) is larger than any
	// UDP datagram, so "too big" on receive only happens on truncation.
	MaxDatagram = 65507
	// DefaultBatchSize is how many datagrams one recvmmsg/sendmmsg moves at most. Each
	// receive slot needs a full 64 KiB buffer (a JOIN or commit token may be that large),
	// so 32 slots (2 MiB per Batch) balance syscall savings against memory.
	DefaultBatchSize = 32

	// corosync's SO_RCVBUF/SO_SNDBUF requests: 16 × the transport's receive frame.
	udpuSocketBuffer = 16 * 136192
	udpSocketBuffer  = 16 * 65536
	// loopSocketBuffer bounds the own-multicast loop: room for a full send window of
	// netmtu-sized MCASTs (each costs about 2 KiB of kernel memory) many times over.
	loopSocketBuffer = 4 << 20
	// tokenPriority is the SO_PRIORITY corosync puts on the socket that carries tokens, so a
	// token is not queued behind bulk traffic on the host.
	tokenPriority = 6
)

// Config describes one ring's sockets. Start from DefaultConfig: several zero values
// (TTL 0, NetMTU 0) are meaningful or invalid and are not treated as "unset".
type Config struct {
	Kind Kind
	// NodeID is this node's nodeid: the local entry of the member table (a token may be
	// sent to oneself) and the sender id of encrypted datagrams.
	NodeID srp.NodeID
	// LinkNumber is the ring's linknumber (0 for udp/udpu, which allow one link). It
	// separates the encryption keys of different rings of one node.
	LinkNumber uint8
	// LocalAddr is the address to bind: the local node's ring0_addr, or the result of
	// ResolveBindNetAddr(bindnetaddr) for a config without a nodelist. Its family selects
	// IPv4 or IPv6 for the whole Link.
	LocalAddr netip.Addr
	// Port is mcastport: udpu binds it; udp receives on it and sends from Port-1.
	Port int
	// McastAddr is the udp group (mcastaddr, or the one derived from cluster_name). Ignored
	// for udpu and when Broadcast is set.
	McastAddr netip.Addr
	// Broadcast (udp, IPv4 only) sends multicasts to 255.255.255.255 instead of a group.
	Broadcast bool
	// TTL is the multicast TTL / IPv6 hop limit for udp, 0..255 (corosync default 1).
	TTL int
	// Members maps nodeid to ring address: the nodelist. Mandatory for udpu; may be empty
	// for udp, which then learns addresses from the JOINs it receives.
	Members map[srp.NodeID]netip.Addr
	// BlockUnlistedIPs (udpu) drops datagrams whose source address is not a member's.
	BlockUnlistedIPs bool
	// NetMTU is totem.netmtu, the UDP payload budget totemsrp plans with. The transport
	// does not cut datagrams to it (corosync does not either); MaxPayload reports what is
	// left of it once encryption overhead is taken off.
	NetMTU int
	// Crypto enables encryption; nil sends corosync-identical cleartext.
	Crypto *CryptoConfig
	// LoopInProcess leaves this node's own copy of each multicast to the caller: Send
	// neither sends it to our own address (udpu) nor writes it to the local loop (which is
	// then not opened), and the caller feeds every ToAll datagram it sent back into its
	// protocol itself. That spares a kernel round trip per multicast, a third of the
	// datagrams of a 3-node udpu ring; other nodes see the same datagrams in the same order.
	LoopInProcess bool
	// GSO sends each run of equal-size datagrams to one destination as one message the
	// kernel segments (UDP_SEGMENT, Linux; needs BatchSize > 1). The datagrams on the wire
	// are unchanged. Where the kernel or device refuses it, the Link logs so once and sends
	// datagrams one by one.
	GSO bool
	// BatchSize is the most datagrams moved per system call; 1 disables batched I/O
	// (plain sendto/recvfrom, for comparison and for kernels without *mmsg).
	BatchSize int
	// Logger receives connection-level events; nil discards them.
	Logger *slog.Logger
	// Knet is the knet transport's configuration (Kind Knet only; see knet.go). LocalAddr,
	// Port, McastAddr, TTL and Crypto are then unused: each link has its own address and
	// port, and knet's crypto is KnetConfig.Crypto.
	Knet *KnetConfig
}

// DefaultConfig returns corosync's defaults for the given transport kind: mcastport 5405,
// ttl 1 (stay on the local segment), netmtu 1500, block_unlisted_ips yes.
func DefaultConfig(kind Kind) Config {
	return Config{
		Kind:             kind,
		Port:             DefaultPort,
		TTL:              1,
		BlockUnlistedIPs: true,
		NetMTU:           DefaultNetMTU,
		BatchSize:        DefaultBatchSize,
		GSO:              true,
	}
}

// validate checks what Open cannot repair, with corosync-style messages.
func (c *Config) validate() error {
	if c.Kind == Knet {
		return c.validateKnet()
	}
	if c.Kind != UDP && c.Kind != UDPU {
		return fmt.Errorf("transport: unknown transport kind %d (want udp, udpu or knet)", uint8(c.Kind))
	}
	if c.NodeID == 0 {
		return errors.New("transport: nodeid must be non-zero (0 is the LEAVE marker)")
	}
	if !c.LocalAddr.IsValid() {
		return errors.New("transport: no local address (bindnetaddr / ring0_addr) given")
	}
	if c.LocalAddr.Is4In6() {
		return fmt.Errorf("transport: local address %s: use the plain IPv4 form", c.LocalAddr)
	}
	if c.LocalAddr.IsMulticast() || c.LocalAddr.IsUnspecified() {
		return fmt.Errorf("transport: local address %s is not a unicast interface address", c.LocalAddr)
	}
	minPort := 1
	if c.Kind == UDP {
		minPort = 2 // udp sends from Port-1
	}
	if c.Port < minPort || c.Port > 65535 {
		return fmt.Errorf("transport: mcastport %d out of range %d..65535", c.Port, minPort)
	}
	if c.TTL < 0 || c.TTL > 255 {
		return fmt.Errorf("transport: ttl %d out of range 0..255", c.TTL)
	}
	if c.NetMTU <= 0 {
		return fmt.Errorf("transport: netmtu %d must be a positive integer", c.NetMTU)
	}
	if c.BatchSize < 1 || c.BatchSize > 1024 {
		return fmt.Errorf("transport: batch size %d out of range 1..1024", c.BatchSize)
	}
	if c.Kind == UDP {
		switch {
		case c.Broadcast && !c.LocalAddr.Is4():
			return errors.New("transport: broadcast needs an IPv4 bind address")
		case !c.Broadcast && !c.McastAddr.IsValid():
			return errors.New("transport: no multicast address specified for interface 0")
		case !c.Broadcast && !c.McastAddr.IsMulticast():
			return fmt.Errorf("transport: mcastaddr %s is not a correct multicast address for interface 0", c.McastAddr)
		case !c.Broadcast && c.McastAddr.Is4() != c.LocalAddr.Is4():
			return errors.New("transport: multicast address family does not match bind address family for interface 0")
		}
	}
	if c.Kind == UDPU && len(c.Members) == 0 {
		return errors.New("transport: udpu needs a nodelist (no members given)")
	}
	for id, a := range c.Members {
		if id == 0 {
			return errors.New("transport: member with nodeid 0")
		}
		if !a.IsValid() || a.Is4() != c.LocalAddr.Is4() || a.Is4In6() {
			return fmt.Errorf("transport: member %d address %s is not of the bind address family", id, a)
		}
	}
	if c.Crypto != nil {
		if err := c.Crypto.validate(); err != nil {
			return err
		}
	}
	return nil
}
