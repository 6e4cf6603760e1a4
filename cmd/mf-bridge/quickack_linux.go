package main

import (
	"net"

	"golang.org/x/sys/unix"
)

// quickAck acknowledges at once what was just read from a TCP connection.
// sendmail writes a macro packet and then its command as two small writes
// with Nagle's algorithm on; the macro packet gets no reply, so without
// an immediate ACK the command waits for the delayed one (about 40 ms)
// at every step. Linux leaves quick-ack mode by itself, so it is set
// again after each read. Not a TCP connection: nothing to do.
func quickAck(c net.Conn) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK, 1)
	})
}
