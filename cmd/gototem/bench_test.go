package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/gototem/gototem/totem"
)

func benchMsg(kind byte, sender totem.NodeID, seq uint64, size int) totem.Message {
	p := make([]byte, size)
	encodeBench(p, kind, sender, seq, 0)
	return totem.Message{Group: "g", Sender: totem.Process{NodeID: sender}, Payload: p}
}

// TestBenchCheckerScenarios proves the checker counts every kind of order or content fault
// and accepts a clean interleaved stream.
func TestBenchCheckerScenarios(t *testing.T) {
	const size = 64
	corrupt := benchMsg(benchData, 1, 1, size)
	corrupt.Payload[size-1] ^= 0xff
	liar := benchMsg(benchData, 2, 0, size)
	liar.Sender.NodeID = 1
	cases := []struct {
		name       string
		msgs       []totem.Message
		wantErrors uint64
		wantDone   bool
	}{
		{"clean interleaved", []totem.Message{benchMsg(benchData, 1, 0, size), benchMsg(benchData, 2, 0, size),
			benchMsg(benchData, 1, 1, size), benchMsg(benchEnd, 1, 2, benchHeader), benchMsg(benchEnd, 2, 1, benchHeader)}, 0, true},
		{"gap", []totem.Message{benchMsg(benchData, 1, 0, size), benchMsg(benchData, 1, 2, size)}, 1, false},
		{"duplicate", []totem.Message{benchMsg(benchData, 1, 0, size), benchMsg(benchData, 1, 0, size)}, 1, false},
		{"corrupted body", []totem.Message{benchMsg(benchData, 1, 0, size), corrupt}, 1, false},
		{"wrong size", []totem.Message{benchMsg(benchData, 1, 0, size+1)}, 1, false},
		{"short", []totem.Message{{Sender: totem.Process{NodeID: 1}, Payload: []byte{benchData, 0}}}, 1, false},
		{"sender mismatch", []totem.Message{liar}, 1, false},
		{"end count mismatch", []totem.Message{benchMsg(benchData, 1, 0, size), benchMsg(benchEnd, 1, 5, benchHeader)}, 1, false},
		{"data after end", []totem.Message{benchMsg(benchEnd, 1, 0, benchHeader), benchMsg(benchData, 1, 0, size)}, 1, false},
		{"unknown kind", []totem.Message{benchMsg('X', 1, 0, size)}, 1, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newBenchChecker(1, size, func() int64 { return 1e6 })
			c.expect([]totem.NodeID{1, 2})
			for _, m := range tc.msgs {
				c.Deliver(m)
			}
			r := c.result(1, 0, 0)
			if r.OrderErrors != tc.wantErrors {
				t.Fatalf("order errors %d, want %d (first: %s)", r.OrderErrors, tc.wantErrors, r.Error)
			}
			done := false
			select {
			case <-c.done:
				done = true
			default:
			}
			if done != tc.wantDone && tc.wantErrors == 0 {
				t.Fatalf("done=%v, want %v", done, tc.wantDone)
			}
		})
	}
}

// TestBenchDigestFollowsOrder proves two nodes that deliver the same messages in different
// orders print different digests, and the same order gives the same digest.
func TestBenchDigestFollowsOrder(t *testing.T) {
	a, b, c := newBenchChecker(1, 64, func() int64 { return 0 }), newBenchChecker(2, 64, func() int64 { return 0 }), newBenchChecker(3, 64, func() int64 { return 0 })
	x, y := benchMsg(benchData, 1, 0, 64), benchMsg(benchData, 2, 0, 64)
	a.Deliver(x)
	a.Deliver(y)
	b.Deliver(x)
	b.Deliver(y)
	c.Deliver(y)
	c.Deliver(x)
	da, db, dc := a.result(1, 0, 0).Digest, b.result(2, 0, 0).Digest, c.result(3, 0, 0).Digest
	if da != db || da == dc {
		t.Fatalf("digests a=%s b=%s c=%s: same order must match, different order must differ", da, db, dc)
	}
}

func TestPercentile(t *testing.T) {
	s := make([]int64, 100)
	for i := range s {
		s[len(s)-1-i] = int64(i+1) * 1e6
	}
	if p := percentile(s, 0.5); p != 50 {
		t.Fatalf("p50 %v ms, want 50", p)
	}
	if p := percentile(s, 0.99); p != 99 {
		t.Fatalf("p99 %v ms, want 99", p)
	}
	if p := percentile(nil, 0.5); p != 0 {
		t.Fatalf("empty p50 %v", p)
	}
}

// TestBenchFlagErrors proves bad flags are usage errors (exit 2) with a message, before
// any configuration is read or socket opened.
func TestBenchFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--size", "3"}, {"--seconds", "0"}, {"--rate", "-1"}, {"--senders", "some"}, {"extra"},
	} {
		var out, errb bytes.Buffer
		if code := runBench(args, &out, &errb); code != 2 || errb.Len() == 0 {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a message", args, code, errb.String())
		}
	}
	var out, errb bytes.Buffer
	if code := runBench([]string{"-c", "/nonexistent/corosync.conf"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "not usable") {
		t.Errorf("missing config: exit %d, stderr %q", code, errb.String())
	}
}
