//go:build !linux

package transport

import (
	"net"
	"syscall"
)

// Off Linux there is no recvmmsg: every read is a single datagram.
func newReader(_ syscall.Conn, udp *net.UDPConn, uc *net.UnixConn, _ int, _ bool) (reader, error) {
	return &stdReader{udp: udp, unix: uc}, nil
}
