//go:build linux && (amd64 || arm64)

package udpbatch

import "testing"

// Where single datagrams are raw system calls (syscalls_linux.go), they allocate nothing.
func TestSingleDatagramsAllocateNothing(t *testing.T) {
	c := NewConn(listen(t), NewGroup())
	peer := NewConn(listen(t), NewGroup())
	payload := make([]byte, 1000)
	buf := make([]byte, 1500)
	to, back := addrOf(peer.UDPConn), addrOf(c.UDPConn)
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := c.WriteToAddrPort(payload, to); err != nil {
			t.Fatal(err)
		}
		if _, _, err := peer.ReadFromAddrPort(buf); err != nil {
			t.Fatal(err)
		}
		if _, err := peer.WriteToAddrPort(payload, back); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.ReadFromAddrPort(buf); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per datagram sent and received, want 0", allocs/2)
	}
}
