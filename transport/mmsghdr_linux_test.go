package transport

import (
	"testing"
	"unsafe"
)

// The kernel reads an array of struct mmsghdr: a size that differs from C's would misread every
// entry after the first.
func TestMmsghdrMatchesKernelLayout(t *testing.T) {
	want := unsafe.Sizeof(uintptr(0)) * 8 // 64 on 64-bit, 32 on 32-bit Linux
	if got := unsafe.Sizeof(mmsghdr{}); got != want {
		t.Fatalf("sizeof(mmsghdr) = %d, kernel's struct mmsghdr is %d", got, want)
	}
	if off := unsafe.Offsetof(mmsghdr{}.Len); off != unsafe.Sizeof(mmsghdr{}.Hdr) {
		t.Fatalf("msg_len at offset %d, want right after msg_hdr (%d)", off, unsafe.Sizeof(mmsghdr{}.Hdr))
	}
}
