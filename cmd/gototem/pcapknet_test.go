package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// The real knet captures live in the repository (copied from ../shared/knet-captures).
var knetCaptures = filepath.Join("..", "..", "knet", "testdata", "captures")

func runPcapCmd(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := dispatch(append([]string{"pcap"}, args...), &out, &errb)
	return out.String(), errb.String(), code
}

// TestPcapKnetSteady pins the knet lines of the two fragmented mcasts of knet-steady (see
// the capture README: 2008 and 2399 bytes from node 1, 1446 bytes in the first fragment)
// and the summary, whose counts are the README's.
func TestPcapKnetSteady(t *testing.T) {
	out, errs, code := runPcapCmd(t, filepath.Join(knetCaptures, "knet-steady.pcap"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{
		"   0.000000 10.77.0.1:5405        > 10.77.0.2:5405        orf          k.host=1 k.seq=81 node=1 ring=1.9 seq=0xf token_seq=0xa8 aru=0xf aru_addr=0 rtr=0\n",
		"   3.441870 10.77.0.1:5405        > 10.77.0.3:5405        knet_frag    k.host=1 k.seq=1660 k.bcast k.frag=1/2 k.len=1446\n",
		"   3.441892 10.77.0.1:5405        > 10.77.0.3:5405        mcast        k.host=1 k.seq=1660 k.bcast k.frag=2/2 k.len=562 k.msg=2008 node=1 ring=1.9 seq=0x3e from=1 guarantee=agreed encapsulated=no len=1963 pg=0/0/5 msgs=cpg.mcast,cpg.mcast,cpg.mcast,cpg.mcast,cpg.mcast\n",
		"   3.946286 10.77.0.1:5405        > 10.77.0.2:5405        mcast        k.host=1 k.seq=1836 k.bcast k.frag=2/2 k.len=953 k.msg=2399 node=1 ring=1.9 seq=0x43 from=1 guarantee=agreed encapsulated=no len=2354 pg=0/0/6 msgs=cpg.mcast,cpg.mcast,cpg.mcast,cpg.mcast,cpg.mcast,cpg.mcast\n",
		"packets: 5175 totem, 0 undecodable\ntypes: orf=4845 mcast=112 merge_detect=18 join=0 commit=0 hold_cancel=104\n" +
			"knet: 5175 packets (0 encrypted) data=5083 ping=46 pong=46 pmtud=0 pmtud_reply=0 fragments=8 messages=5079\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if n := strings.Count(out, "knet_ping "); n != 46 {
		t.Errorf("%d ping lines", n)
	}
}

// TestPcapKnetEncrypted: with the authkey every packet of the aes256 capture decodes (the
// README's counts); without it every one is reported as probably encrypted; a bad flag or an
// unreadable key is a usage error.
func TestPcapKnetEncrypted(t *testing.T) {
	pcap := filepath.Join(knetCaptures, "knet-aes256-formation.pcap")
	key := filepath.Join(knetCaptures, "knet-aes256.authkey")
	out, errs, code := runPcapCmd(t, "--authkey", key, pcap)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{
		"   0.000000 10.77.0.1:5405        > 10.77.0.3:5405        knet_ping    k.host=1 k.enc k.link=0 k.seq=0 k.time=3768.164725340\n",
		"   2.168406 10.77.0.1:5405        > 10.77.0.2:5405        commit       k.host=1 k.enc k.seq=4 node=1 ring=1.9 members={1,2,3} memb_index=1 token_seq=0x1\n",
		"packets: 339 totem, 0 undecodable\ntypes: orf=147 mcast=30 merge_detect=18 join=12 commit=6 hold_cancel=0\n" +
			"knet: 339 packets (339 encrypted) data=243 ping=42 pong=42 pmtud=6 pmtud_reply=6 fragments=48 messages=213\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	out, _, _ = runPcapCmd(t, pcap)
	if !strings.Contains(out, "packets: 339 totem, 339 undecodable\n") || strings.Count(out, "encrypted knet? (give the authkey)") != 339 {
		t.Errorf("without the key: %s", out[strings.LastIndex(out, "packets:"):])
	}
	out, _, _ = runPcapCmd(t, "--authkey", key, "--crypto-hash", "sha512", pcap)
	if !strings.Contains(out, "packets: 339 totem, 339 undecodable\n") || !strings.Contains(out, "digest does not match") {
		t.Errorf("with the wrong hash: %s", out[strings.LastIndex(out, "packets:"):])
	}
	for _, args := range [][]string{
		{"--authkey", key, "--crypto-cipher", "aes512", pcap},
		{"--authkey", filepath.Join(knetCaptures, "missing.authkey"), pcap},
		{"--authkey", pcap + ".nope", pcap},
	} {
		if _, errs, code := runPcapCmd(t, args...); code != 2 || errs == "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, errs)
		}
	}
}
