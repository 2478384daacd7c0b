package udpbatch

import (
	"bytes"
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// The reads Pion's UDP mux makes, and the writes outside a fan-out (RTCP, STUN), go through
// raw system calls on IPv4 sockets: they must behave as the standard library's do.
func TestSingleDatagramsInBothDirectionsCarryTheirAddresses(t *testing.T) {
	c := NewConn(listen(t), NewGroup())
	peer := listen(t)

	if _, err := c.WriteToAddrPort([]byte("to the peer"), addrOf(peer)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := peer.ReadFromUDPAddrPort(buf)
	if err != nil || string(buf[:n]) != "to the peer" || from != addrOf(c.UDPConn) {
		t.Fatalf("peer got %q from %v (%v), want %q from %v", buf[:n], from, err, "to the peer", addrOf(c.UDPConn))
	}

	if _, err := peer.WriteToUDPAddrPort([]byte("to the node"), addrOf(c.UDPConn)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err = c.ReadFromAddrPort(buf)
	if err != nil || string(buf[:n]) != "to the node" || from != addrOf(peer) {
		t.Fatalf("node got %q from %v (%v), want %q from %v", buf[:n], from, err, "to the node", addrOf(peer))
	}

	// A datagram larger than the buffer is cut to it, as recvfrom does.
	long := bytes.Repeat([]byte{7}, 1200)
	if _, err := peer.WriteToUDPAddrPort(long, addrOf(c.UDPConn)); err != nil {
		t.Fatal(err)
	}
	if n, _, err = c.ReadFromAddrPort(buf); err != nil || n != len(buf) {
		t.Fatalf("1200 bytes into a 100-byte buffer: %d bytes, %v", n, err)
	}
}

func TestReadsTimeOutAndEndWhenTheSocketCloses(t *testing.T) {
	c := NewConn(listen(t), NewGroup())
	buf := make([]byte, 100)

	// Pion's mux goes on reading after a timeout: it must be recognisable as one.
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, _, err := c.ReadFromAddrPort(buf); !os.IsTimeout(err) {
		t.Fatalf("read past its deadline: %v, want a timeout", err)
	}

	// ...and stops when the socket is closed under a waiting read.
	c.SetReadDeadline(time.Time{})
	errs := make(chan error, 1)
	go func() {
		_, _, err := c.ReadFromAddrPort(buf)
		errs <- err
	}()
	time.Sleep(50 * time.Millisecond) // let the read park in the poller
	c.Close()
	select {
	case err := <-errs:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read on a closed socket: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a read waiting on a socket did not end when it was closed")
	}
}
