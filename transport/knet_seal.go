package transport

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/gototem/gototem/knet"
)

// Sealing a token visit on several cores. With aes256/sha256 a knet packet costs about
// 1.5 ns a byte to seal (AES-CBC, one block at a time, then the HMAC), and a visit of the
// 8 KiB flood bench carries ~800 KB: in the profile of issue 15 the sender spent 0.8 s of
// its 1.3 s on the token's path sealing and 0.5 s in sendmmsg, one after the other, while
// the ring waited for the token. CBC chains the blocks of one packet but not the packets:
// the Endpoint lays a whole visit out first (seq numbers, fragments and salts assigned in
// order, so the wire is what a serial sealing writes), then a fixed set of workers seals
// the messages' packets in parallel while the owner sends each message as soon as it is
// sealed, in order.
//
// Within a task, and on the owner's own path, knet.RunJobs seals the jobs four at a time:
// their packets' CBC chains, independent of each other, go through AES-NI's rounds side by
// side (aescbc's EncryptMulti), so that four packets cost about what one did, then each
// is signed. Measured (go test ./knet -run '^$' -bench SealJobs -benchtime 0.5s -count 3,
// 16 full-MTU aes256/sha256 packets, on the 2-core development machine with another load
// on it): 22.3-23.4 µs against 39.1-40.3 µs job by job, about 1.4 µs a packet against
// 2.5 µs (1 ns a byte against 1.7), the HMAC now most of what is left.
//
// Measured (GOTOTEM_BENCH=1 GOTOTEM_BENCH_TRANSPORT=knet [GOTOTEM_BENCH_KNET_CRYPTO=1]
// GOTOTEM_BENCH_SECS=3 go test ./internal/interop -run 'TestBenchCPGFlood$', 3 nodes, 3 runs,
// with the parallel opening below): gototem/corosync 15.6-17.7x / 4.3-5.5x / 2.26-2.77x at
// 64 B / 1 KiB / 8 KiB with aes256/sha256 (the previous stop: 1.15-1.57x at 8 KiB), and
// 21.6-30.7x / 7.8-11.1x / 2.5-5.0x clear. With knet/internal/aescbc's assembly (one call a
// packet, decryption 8 blocks at a time) 8 KiB went to 2.22-3.03x (4 runs), and with
// RunJobs's four chains at once to 2.49-3.15x (4 runs; 64 B 18.8-23.4x, 1 KiB 5.5-7.1x). The lab stays far from CPU-bound at 8 KiB (~58
// 64 KiB packets a visit, a rotation every ~37 ms): the rest is the kernel's and the
// token's.

// sealChunk is the sealing work one task covers (~16 µs with aes256/sha256 through
// knet.RunJobs at BenchmarkSealJobs's rate, ~30 µs job by job before it): big enough
// that handing it over costs little, small enough that a 64 KiB message spreads over the
// workers.
const sealChunk = 16 << 10

// sealParallelMin is the least sealing work of a visit worth the hand-over (a token alone,
// or a few small messages, are sealed at once by the owner).
const sealParallelMin = 2 * sealChunk

// sealTask is a run of one message's jobs, or (ob set) of a coalesced read's datagrams to
// open.
type sealTask struct {
	v      *sealVisit
	msg    int
	jobs   []knet.SealJob
	ob     *openBatch
	lo, hi int
}

// sealVisit tracks one sendKnet call's messages: left[k] counts message k's unfinished
// tasks; the worker that finishes the last one reports k on done.
type sealVisit struct {
	left []atomic.Int32
	done chan int
}

var (
	sealOnce  sync.Once
	sealTasks chan sealTask
)

// sealWorkers starts the process's sealing workers once: one per CPU, each with its own
// Sealer and Opener, shared by every knet Link of the process.
func sealWorkers() chan<- sealTask {
	sealOnce.Do(func() {
		n := max(runtime.GOMAXPROCS(0), 2)
		sealTasks = make(chan sealTask, 256)
		for range n {
			go func() {
				var s knet.Sealer
				var o knet.Opener
				for t := range sealTasks {
					if t.ob != nil {
						t.ob.open(&o, t.lo, t.hi)
						continue
					}
					knet.RunJobs(t.jobs, &s)
					if t.v.left[t.msg].Add(-1) == 0 {
						t.v.done <- t.msg
					}
				}
			}()
		}
	})
	return sealTasks
}

// knetMsg is one message of a visit: its datagrams and the jobs that seal them.
type knetMsg struct {
	ds   []knet.Datagram
	jobs []knet.SealJob
}

// knetSealAndFlushLocked seals the visit's messages and sends them in order. ks.mu held.
func (l *Link) knetSealAndFlushLocked(msgs []knetMsg) error {
	ks := l.knet
	work := 0
	for i := range msgs {
		for j := range msgs[i].jobs {
			work += msgs[i].jobs[j].Len()
		}
	}
	var errs error
	if work < sealParallelMin {
		for i := range msgs {
			knet.RunJobs(msgs[i].jobs, &ks.sealer)
			errs = errors.Join(errs, l.knetFlushLocked(msgs[i].ds))
		}
		return errs
	}
	v := &ks.visit
	if cap(v.left) < len(msgs) {
		v.left = make([]atomic.Int32, len(msgs))
		v.done = make(chan int, len(msgs))
	}
	v.left = v.left[:len(msgs)]
	tasks := sealWorkers()
	for i := range msgs {
		jobs := msgs[i].jobs
		// count the tasks first: a worker may finish one before the next is queued
		n, size := int32(0), 0
		for j := range jobs {
			size += jobs[j].Len()
			if size >= sealChunk || j == len(jobs)-1 {
				n, size = n+1, 0
			}
		}
		v.left[i].Store(n)
	}
	ready := ks.ready[:0]
	for range msgs {
		ready = append(ready, false)
	}
	for i := range msgs {
		jobs := msgs[i].jobs
		if len(jobs) == 0 {
			ready[i] = true
			continue
		}
		lo, size := 0, 0
		for j := range jobs {
			size += jobs[j].Len()
			if size >= sealChunk || j == len(jobs)-1 {
				tasks <- sealTask{v: v, msg: i, jobs: jobs[lo : j+1]}
				lo, size = j+1, 0
			}
		}
	}
	for i := range msgs {
		for !ready[i] {
			ready[<-v.done] = true
		}
		errs = errors.Join(errs, l.knetFlushLocked(msgs[i].ds))
	}
	ks.ready = ready
	return errs
}

// Opening a coalesced read on several cores. A UDP_GRO read holds a peer's GSO send: up to
// ~45 fragments of one 64 KiB totem packet, each opened (HMAC, then AES-CBC decryption,
// ~1.5 ns a byte with aes256/sha256) before the Endpoint takes it; the token, behind them
// in the socket, waits for all of them. The datagrams open independently into their own
// slots of an arena, on the workers, and then go through the Endpoint in the order they
// arrived, as one at a time would.

// openParallelMin is the least number of datagrams in a read worth handing over.
const openParallelMin = 4

// openBatch is one coalesced read being opened: segment i of wire opens into
// arena[i*seg:(i+1)*seg] (a plaintext is never longer than its datagram), with its result
// in plain[i] and errs[i].
type openBatch struct {
	ep    *knet.Endpoint
	wire  []byte
	seg   int
	arena []byte
	plain [][]byte
	errs  []error
	left  atomic.Int32
	done  chan struct{}
}

func (ob *openBatch) open(o *knet.Opener, lo, hi int) {
	for i := lo; i < hi; i++ {
		a := i * ob.seg
		w := ob.wire[a:min(a+ob.seg, len(ob.wire))]
		ob.plain[i], ob.errs[i] = ob.ep.Open(o, ob.arena[a:a:a+len(w)], w)
	}
	if ob.left.Add(-1) == 0 {
		ob.done <- struct{}{}
	}
}

// knetOpenParallelLocked opens every datagram of the coalesced buffer wire (segments of
// seg bytes, the last one shorter) on the workers and returns when all are open; results
// in ks.ob. Nothing is allocated once the arena has grown to the largest read. ks.mu held.
func (l *Link) knetOpenParallelLocked(wire []byte, seg int) *openBatch {
	ks := l.knet
	ob := &ks.ob
	n := (len(wire) + seg - 1) / seg
	if ob.done == nil {
		ob.done = make(chan struct{}, 1)
	}
	if cap(ob.arena) < len(wire) {
		ob.arena = make([]byte, 0, max(len(wire), 1<<16))
	}
	if cap(ob.plain) < n {
		ob.plain, ob.errs = make([][]byte, n, max(n, 64)), make([]error, n, max(n, 64))
	}
	ob.ep, ob.wire, ob.seg = ks.ep, wire, seg
	ob.arena, ob.plain, ob.errs = ob.arena[:len(wire)], ob.plain[:n], ob.errs[:n]
	// chunks of about sealChunk bytes
	per := max(sealChunk/seg, 1)
	ob.left.Store(int32((n + per - 1) / per))
	tasks := sealWorkers()
	last := (n - 1) / per * per
	for lo := 0; lo < last; lo += per {
		tasks <- sealTask{ob: ob, lo: lo, hi: min(lo+per, n)}
	}
	// the reader opens the last chunk itself instead of sleeping through it
	ob.open(&ks.opener, last, n)
	<-ob.done
	return ob
}
