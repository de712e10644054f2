package aescbc

import "unsafe"

// MaxChains is the most chains one EncryptMulti call takes: the assembly interleaves four.
const MaxChains = 4

// Chain is one message of EncryptMulti: CBC-encrypt Src (a whole number of blocks) into Dst
// (at least as long; the same memory or disjoint) starting from IV (BlockSize bytes).
type Chain struct {
	IV       []byte
	Dst, Src []byte
}

// lane is one chain as cbcEncrypt4 reads it (the offsets in cbc_amd64.s).
type lane struct {
	iv       *[BlockSize]byte
	dst, src *byte
}

// EncryptMulti CBC-encrypts up to MaxChains independent messages with m's key, each from
// its own IV, as if each ran alone through m.SetIV(IV) and m.CryptBlocks(Dst, Src), and
// leaves m's IV as such a sequence in order would (the last chain's last ciphertext block,
// or its IV when it is empty).
//
// Why: CBC encryption is one serial chain per message, bound by AESENC's latency (about
// four cycles) while the unit could start about one AESENC a cycle. On the assembly the
// chains go through the rounds side by side, four at a time while all four have blocks
// left, then the ones still going (fewer lanes cost the same: the spare lanes repeat a
// live one), the last one alone; so four messages cost about what the longest one alone
// does. On the fallback the chains run one after the other through crypto/cipher.
//
// Each chain has cipher.BlockMode's contract (it panics as CryptBlocks does); the chains
// must not share memory with each other (it panics if a chain's Dst overlaps another's Src
// or Dst), but an IV may lie anywhere: all of them are read before anything is written.
// m must be an encrypter. It allocates nothing.
func (m *Mode) EncryptMulti(chains []Chain) {
	if m.decrypt {
		panic("aescbc: EncryptMulti on a decrypter")
	}
	if len(chains) > MaxChains {
		panic("aescbc: more than MaxChains chains")
	}
	var ivs [MaxChains][BlockSize]byte
	for i := range chains {
		ch := &chains[i]
		if len(ch.IV) != BlockSize {
			panic("aescbc: IV length must equal block size")
		}
		if len(ch.Src)%BlockSize != 0 {
			panic("aescbc: input not full blocks")
		}
		if len(ch.Dst) < len(ch.Src) {
			panic("aescbc: output smaller than input")
		}
		if inexactOverlap(ch.Dst[:len(ch.Src)], ch.Src) {
			panic("aescbc: invalid buffer overlap")
		}
		copy(ivs[i][:], ch.IV)
	}
	for i := range chains {
		di := chains[i].Dst[:len(chains[i].Src)]
		for j := range chains {
			if j != i && (overlap(di, chains[j].Src) || overlap(di, chains[j].Dst[:len(chains[j].Src)])) {
				panic("aescbc: EncryptMulti chains overlap")
			}
		}
	}
	if len(chains) == 0 {
		return
	}
	if m.generic != nil {
		for i := range chains {
			// through m.iv, unused on the fallback: ivs stays on the stack, where an
			// interface call's argument would not
			m.iv = ivs[i]
			m.generic.SetIV(m.iv[:])
			m.generic.CryptBlocks(chains[i].Dst, chains[i].Src)
		}
		return
	}
	m.encryptMulti(chains, &ivs)
	m.iv = ivs[len(chains)-1]
}

// encryptMulti is EncryptMulti on the assembly, the chains checked and their IVs in ivs,
// where each chain ends.
func (m *Mode) encryptMulti(chains []Chain, ivs *[MaxChains][BlockSize]byte) {
	var dst, src [MaxChains][]byte
	for i := range chains {
		src[i] = chains[i].Src
		dst[i] = chains[i].Dst[:len(src[i])]
	}
	rounds, xk := m.c.rounds, &m.c.enc
	for {
		// the chains with blocks left, and the fewest bytes any of them has left
		var live [MaxChains]int
		k, least := 0, 0
		for i := range chains {
			if n := len(src[i]); n > 0 {
				live[k] = i
				k++
				if least == 0 || n < least {
					least = n
				}
			}
		}
		switch k {
		case 0:
			return
		case 1:
			i := live[0]
			cbcEncrypt(rounds, xk, &ivs[i], &dst[i][0], &src[i][0], len(src[i]))
			return
		}
		var lanes [MaxChains]lane
		for s := range lanes {
			i := live[0] // a spare lane repeats the first live chain
			if s < k {
				i = live[s]
			}
			lanes[s] = lane{iv: &ivs[i], dst: &dst[i][0], src: &src[i][0]}
		}
		cbcEncrypt4(rounds, xk, &lanes, least)
		for _, i := range live[:k] {
			src[i], dst[i] = src[i][least:], dst[i][least:]
		}
	}
}

// overlap reports whether x and y share any memory (both non-empty).
func overlap(x, y []byte) bool {
	if len(x) == 0 || len(y) == 0 {
		return false
	}
	px, py := uintptr(unsafe.Pointer(&x[0])), uintptr(unsafe.Pointer(&y[0]))
	return px < py+uintptr(len(y)) && py < px+uintptr(len(x))
}
