package totem

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gototem/gototem/config"
)

// clusterConf writes a corosync.conf for n nodes on 127.<a>.<b>.1..n.
func clusterConf(transport string, n int, base netip.Addr, port int, totemExtra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "totem {\n version: 2\n cluster_name: gotest\n transport: %s\n token: 1000\n", transport)
	var nodeExtra string
	for _, l := range totemExtra {
		// "node.key: value" goes in every nodelist node instead (gototem_node: yes).
		if k, ok := strings.CutPrefix(l, "node."); ok {
			nodeExtra += "  " + k + "\n"
			continue
		}
		fmt.Fprintf(&b, " %s\n", l)
	}
	fmt.Fprintf(&b, " interface {\n  linknumber: 0\n  mcastport: %d\n }\n}\n", port)
	b.WriteString("nodelist {\n")
	a := base
	for i := 1; i <= n; i++ {
		a = a.Next()
		fmt.Fprintf(&b, " node {\n  nodeid: %d\n  name: n%d\n  ring0_addr: %s\n%s }\n", i, i, a, nodeExtra)
	}
	b.WriteString("}\nquorum {\n provider: corosync_votequorum\n}\n")
	return b.String()
}

type recorder struct {
	mu     sync.Mutex
	msgs   []string
	change []GroupChange
}

func (r *recorder) Deliver(m Message) {
	r.mu.Lock()
	r.msgs = append(r.msgs, fmt.Sprintf("%d:%s", m.Sender, m.Payload))
	r.mu.Unlock()
}

func (r *recorder) ConfigChange(c GroupChange) {
	r.mu.Lock()
	r.change = append(r.change, c)
	r.mu.Unlock()
}

func (r *recorder) messages() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}

type member struct {
	node  *Node
	group *Group
	rec   *recorder
	mu    sync.Mutex
	rings []Membership
}

func (m *member) lastRegular() (Membership, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := len(m.rings) - 1; i >= 0; i-- {
		if m.rings[i].Kind == Regular {
			return m.rings[i], true
		}
	}
	return Membership{}, false
}

func startCluster(t testing.TB, transport string, n int, perNodeExtra ...func(id int) []string) []*member {
	t.Helper()
	return startClusterWith(t, transport, n, func(id int) []string {
		var extra []string
		for _, f := range perNodeExtra {
			extra = append(extra, f(id)...)
		}
		return extra
	}, nil)
}

// startClusterWith is startCluster with per-node config lines and an optional logger.
func startClusterWith(t testing.TB, transport string, n int, extraOf func(id int) []string, logOf func(id int) *slog.Logger) []*member {
	t.Helper()
	base := netip.AddrFrom4([4]byte{127, byte(10 + rand.IntN(200)), byte(rand.IntN(250)), 0})
	port := 20000 + rand.IntN(20000)
	var ms []*member
	a := base
	for i := 1; i <= n; i++ {
		a = a.Next()
		extra := extraOf(i)
		text := clusterConf(transport, n, base, port, extra...)
		cfg, _, err := config.Parse("corosync.conf", strings.NewReader(text))
		if err != nil {
			t.Fatal(err)
		}
		rt, _, err := cfg.Resolve(config.Local{Addrs: config.LocalAddrs(a)})
		if err != nil {
			t.Fatal(err)
		}
		var log *slog.Logger
		if logOf != nil {
			log = logOf(i)
		}
		ms = append(ms, startMember(t, FromRuntime(rt), log))
	}
	return ms
}

// startMember starts one node that records its memberships; the test's cleanup stops it.
func startMember(t testing.TB, cfg Config, log *slog.Logger) *member {
	return startMemberWith(t, Options{Config: cfg, Logger: log})
}

// startMemberWith is startMember with more options (callbacks): the membership recorder runs
// before o's own OnMembership, and StateDir defaults to a temporary directory.
func startMemberWith(t testing.TB, o Options) *member {
	t.Helper()
	m := &member{rec: &recorder{}}
	onMembership := o.OnMembership
	o.OnMembership = func(c Membership) {
		m.mu.Lock()
		m.rings = append(m.rings, c)
		m.mu.Unlock()
		if onMembership != nil {
			onMembership(c)
		}
	}
	if o.StateDir == "" {
		o.StateDir = t.TempDir()
	}
	node, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	m.node = node
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		m.node.Stop(ctx)
		cancel()
	})
	return m
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s", d, what)
}

func ringOf(ms []*member, want []NodeID) func() bool {
	return func() bool {
		var ring RingID
		for i, m := range ms {
			c, ok := m.lastRegular()
			if !ok || !slices.Equal(c.Members, want) {
				return false
			}
			if i > 0 && c.RingID != ring {
				return false
			}
			ring = c.RingID
		}
		return true
	}
}

// Three nodes on real UDP sockets form one ring, join a group and deliver each other's
// messages in one order; a clean Stop (LEAVE) makes the others reform quickly.
func TestNodesOverUDPU(t *testing.T) {
	testCluster(t, "udpu")
}

func TestNodesOverUDP(t *testing.T) {
	testCluster(t, "udp")
}

// joinAll waits for the ring of every member, joins each to group "g" with its recorder and
// waits until every member sees all of them in it.
func joinAll(t *testing.T, ms []*member) {
	t.Helper()
	var all []NodeID
	for i := range ms {
		all = append(all, NodeID(i+1))
	}
	waitFor(t, 10*time.Second, fmt.Sprintf("a %d-node ring", len(ms)), ringOf(ms, all))
	for _, m := range ms {
		g, err := m.node.Join("g", m.rec)
		if err != nil {
			t.Fatal(err)
		}
		m.group = g
	}
	waitFor(t, 5*time.Second, fmt.Sprintf("%d group members everywhere", len(ms)), func() bool {
		for _, m := range ms {
			if len(m.group.Members()) != len(ms) {
				return false
			}
		}
		return true
	})
}

// floodInOneOrder has every member send per messages at once and checks every member delivers
// all of them in one order.
func floodInOneOrder(t *testing.T, ctx context.Context, ms []*member, per int, wait time.Duration) {
	t.Helper()
	var wg sync.WaitGroup
	for i, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range per {
				if err := m.group.Send(ctx, []byte(fmt.Sprintf("n%d-%d", i+1, k)), Agreed); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	waitFor(t, wait, "every message delivered", func() bool {
		for _, m := range ms {
			if len(m.rec.messages()) != len(ms)*per {
				return false
			}
		}
		return true
	})
	want := ms[0].rec.messages()
	for i, m := range ms[1:] {
		if got := m.rec.messages(); !slices.Equal(got, want) {
			t.Fatalf("node %d delivered another order", i+2)
		}
	}
}

func testCluster(t *testing.T, transport string) {
	ms := startCluster(t, transport, 3)
	joinAll(t, ms)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	floodInOneOrder(t, ctx, ms, 50, 10*time.Second)
	st := ms[0].node.Status()
	if st.State != "OPERATIONAL" || len(st.Members) != 3 || st.Quorum.Local.TotalVotes != 3 {
		t.Fatalf("status: state %v members %v quorum %+v", st.State, st.Members, st.Quorum.Local)
	}
	start := time.Now()
	if err := ms[2].node.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "a 2-node ring after LEAVE", ringOf(ms[:2], []NodeID{1, 2}))
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Errorf("reforming after a LEAVE took %v; a LEAVE should not wait for the token timeout", d)
	}
}
