//go:build !linux

package main

import "net"

// quickAck: only Linux has TCP_QUICKACK.
func quickAck(c net.Conn) {}
