//go:build !(linux && (amd64 || arm64))

package udpbatch

import (
	"net"
	"net/netip"
)

// Elsewhere every datagram is written on its own (NewConn never enables batching).
const batchSupported = false

type sysBatch struct{ b *batch }

func (s *sysBatch) init(b *batch) { s.b = b }

func (s *sysBatch) send(conn *net.UDPConn, from int) (int, error) {
	b := s.b
	if _, err := conn.WriteToUDPAddrPort(b.bufs[from][:b.lens[from]], b.dsts[from]); err != nil {
		return 0, err
	}
	return 1, nil
}

// rawIO is the standard library's reads and writes here.
type rawIO struct{}

func (r *rawIO) init() {}

func (r *rawIO) read(conn *net.UDPConn, b []byte) (int, netip.AddrPort, error) {
	return conn.ReadFromUDPAddrPort(b)
}

func (r *rawIO) write(conn *net.UDPConn, b []byte, addr netip.AddrPort) (int, error) {
	return conn.WriteToUDPAddrPort(b, addr)
}
