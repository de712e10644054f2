package ipc

import (
	"bytes"
	"fmt"
	"os"
)

// upper is a Service: it answers every request with its body in upper case.
type upper struct{}

func (upper) Connect(c *Conn) error { return nil }
func (upper) Disconnect(c *Conn)    {}
func (upper) Request(c *Conn, id int32, msg []byte) {
	c.Respond(id, 1, bytes.ToUpper(msg[RequestHeaderSize:])) // 1 is CS_OK
}

// A Server serves a Service on an abstract unix name, as corosync serves "cmap" or "cpg";
// a libqb client (here the package tests' minimal one, which speaks libqb's handshake and
// socket-mode channels) connects by that name and gets one response per request.
func Example() {
	shm, err := os.MkdirTemp("/dev/shm", "gtipc-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(shm)
	s := NewServer(Options{ShmDir: shm}) // root clients only, as corosync without uidgid
	defer s.Close()
	name := fmt.Sprintf("gtipc-example-%d", os.Getpid())
	if err := s.Listen(name, upper{}); err != nil {
		fmt.Println(err)
		return
	}
	c, err := dialTest(name, 8192)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.close()
	m, err := c.call(7, []byte("hello"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("response to request %d: %q (error %d)\n", m.id, m.body, m.err)
	fmt.Println("connections:", len(s.Conns()))
	// Output:
	// response to request 7: "HELLO" (error 1)
	// connections: 1
}
