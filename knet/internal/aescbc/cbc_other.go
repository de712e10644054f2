//go:build !amd64 || purego

package aescbc

// haveAsm: no assembly in this build; every Cipher is crypto/aes's with crypto/cipher's CBC.
const haveAsm = false

func cbcEncrypt(rounds int, xk *schedule, iv *[BlockSize]byte, dst, src *byte, n int) {
	panic("aescbc: no assembly in this build")
}

func cbcDecrypt(rounds int, xk *schedule, iv *[BlockSize]byte, dst, src *byte, n int) {
	panic("aescbc: no assembly in this build")
}

func cbcEncrypt4(rounds int, xk *schedule, lanes *[MaxChains]lane, n int) {
	panic("aescbc: no assembly in this build")
}
