package transport

import "golang.org/x/sys/unix"

// mmsghdr is the kernel's struct mmsghdr for sendmmsg(2)/recvmmsg(2). x/sys declares it only from
// v0.48, which needs Go 1.26; declaring it here keeps the module buildable on Go 1.25 (issue 17).
// Go pads the struct to Msghdr's alignment, as C does: 64 bytes on amd64/arm64, 32 on 386/arm.
type mmsghdr struct {
	Hdr unix.Msghdr
	Len uint32
}
