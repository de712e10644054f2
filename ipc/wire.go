package ipc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Message ids of qbipc_common.h. User messages start at 0; the negative ones are libqb's own.
const (
	MsgAuthenticate = -1 // QB_IPC_MSG_AUTHENTICATE: the setup request and response
	MsgNewEventSock = -2 // QB_IPC_MSG_NEW_EVENT_SOCK (not used in socket mode)
	MsgDisconnect   = -3 // QB_IPC_MSG_DISCONNECT
)

// Connection types of enum qb_ipc_type.
const (
	TypeSocket = 0 // QB_IPC_SOCKET
	TypeShm    = 1 // QB_IPC_SHM
)

// Sizes of libqb's wire structs on Linux/amd64 (every int32 of the headers is aligned(8)).
const (
	RequestHeaderSize  = 16 // struct qb_ipc_request_header {id; size}
	ResponseHeaderSize = 24 // struct qb_ipc_response_header {id; size; error}

	setupRequestSize  = 24    // struct qb_ipc_connection_request
	setupResponseSize = 12328 // struct qb_ipc_connection_response
	pathMax           = 4096  // PATH_MAX: the three names of the setup response
	nameMax           = 255   // NAME_MAX: libqb copies the control file name into this

	// Offsets in the setup response.
	respTypeOff    = 24
	respMaxOff     = 28
	respConnOff    = 32
	respRequestOff = 40
	respRespOff    = respRequestOff + pathMax
	respEventOff   = respRespOff + pathMax

	controlSize = 24 // SHM_CONTROL_SIZE: 3 * struct ipc_us_control {int32 sent; int32 flow_control}
)

// Offsets of the three ipc_us_control blocks of the control file.
const (
	ctlRequest  = 0
	ctlResponse = 8
	ctlEvent    = 16
)

// sunPathLen is sizeof(sun_path) on Linux.
const sunPathLen = 108

// abstractAddr is libqb's address for an abstract name: a NUL, the name, and NUL padding to
// the whole sun_path, because libqb binds and connects with sizeof(struct sockaddr_un) and
// the kernel takes every byte of an abstract address as part of the name. x/sys's
// SockaddrUnix cannot express that length (it stops one byte short), so the raw struct is
// passed to bind(2)/connect(2) directly.
func abstractAddr(name string) (*unix.RawSockaddrUnix, error) {
	if len(name)+1 > sunPathLen {
		return nil, fmt.Errorf("ipc: socket name %q longer than %d bytes", name, sunPathLen-1)
	}
	if strings.IndexByte(name, 0) >= 0 {
		return nil, fmt.Errorf("ipc: socket name %q contains NUL", name)
	}
	a := &unix.RawSockaddrUnix{Family: unix.AF_UNIX}
	for i := 0; i < len(name); i++ {
		a.Path[i+1] = int8(name[i])
	}
	return a, nil
}

// sockaddrCall is bind(2) or connect(2) with a whole sockaddr_un.
func sockaddrCall(trap uintptr, fd int, a *unix.RawSockaddrUnix) error {
	_, _, e := unix.Syscall(trap, uintptr(fd), uintptr(unsafe.Pointer(a)), unsafe.Sizeof(*a))
	if e != 0 {
		return e
	}
	return nil
}

func bindAbstract(fd int, a *unix.RawSockaddrUnix) error {
	return sockaddrCall(unix.SYS_BIND, fd, a)
}

func connectAbstract(fd int, a *unix.RawSockaddrUnix) error {
	return sockaddrCall(unix.SYS_CONNECT, fd, a)
}

// setupRequest is a decoded qb_ipc_connection_request.
type setupRequest struct {
	id, size   int32
	maxMsgSize uint32
}

var errSetupShort = errors.New("ipc: setup request shorter than 24 bytes")

func decodeSetupRequest(b []byte) (setupRequest, error) {
	if len(b) < setupRequestSize {
		return setupRequest{}, errSetupShort
	}
	return setupRequest{
		id:         int32(binary.LittleEndian.Uint32(b[0:])),
		size:       int32(binary.LittleEndian.Uint32(b[8:])),
		maxMsgSize: binary.LittleEndian.Uint32(b[16:]),
	}, nil
}

// setupResponse is a qb_ipc_connection_response.
type setupResponse struct {
	errno      int32 // 0 or a negative errno
	connType   int32
	maxMsgSize uint32
	connection uint64 // an opaque handle (libqb sends its connection pointer)
	request    string // the control file
	response   string // the base name of the datagram sockets
	event      string
}

func (r setupResponse) encode() []byte {
	b := make([]byte, setupResponseSize)
	le := binary.LittleEndian
	le.PutUint32(b[0:], uint32(MsgAuthenticate&0xffffffff))
	le.PutUint32(b[8:], setupResponseSize)
	le.PutUint32(b[16:], uint32(r.errno))
	if r.errno == 0 {
		le.PutUint32(b[respTypeOff:], uint32(r.connType))
		le.PutUint32(b[respMaxOff:], r.maxMsgSize)
		le.PutUint64(b[respConnOff:], r.connection)
		copy(b[respRequestOff:respRequestOff+pathMax-1], r.request)
		copy(b[respRespOff:respRespOff+pathMax-1], r.response)
		copy(b[respEventOff:respEventOff+pathMax-1], r.event)
	}
	return b
}

func cstring(b []byte) string {
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		return string(b[:i])
	}
	return string(b)
}

func decodeSetupResponse(b []byte) (setupResponse, error) {
	if len(b) < setupResponseSize {
		return setupResponse{}, fmt.Errorf("ipc: setup response of %d bytes", len(b))
	}
	le := binary.LittleEndian
	return setupResponse{
		errno:      int32(le.Uint32(b[16:])),
		connType:   int32(le.Uint32(b[respTypeOff:])),
		maxMsgSize: le.Uint32(b[respMaxOff:]),
		connection: le.Uint64(b[respConnOff:]),
		request:    cstring(b[respRequestOff : respRequestOff+pathMax]),
		response:   cstring(b[respRespOff : respRespOff+pathMax]),
		event:      cstring(b[respEventOff : respEventOff+pathMax]),
	}, nil
}

// PutResponseHeader writes a qb_ipc_response_header (id, size, error) into b[:24].
func PutResponseHeader(b []byte, id int32, size int, csErr int32) {
	le := binary.LittleEndian
	le.PutUint32(b[0:], uint32(id))
	le.PutUint32(b[4:], 0)
	le.PutUint32(b[8:], uint32(size))
	le.PutUint32(b[12:], 0)
	le.PutUint32(b[16:], uint32(csErr))
	le.PutUint32(b[20:], 0)
}

// RequestHeader decodes a qb_ipc_request_header.
func RequestHeader(b []byte) (id, size int32, ok bool) {
	if len(b) < RequestHeaderSize {
		return 0, 0, false
	}
	return int32(binary.LittleEndian.Uint32(b[0:])), int32(binary.LittleEndian.Uint32(b[8:])), true
}
