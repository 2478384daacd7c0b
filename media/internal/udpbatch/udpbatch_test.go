package udpbatch

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

func listen(t testing.TB) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func addrOf(c *net.UDPConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }

// receive reads n datagrams (each carrying its index) and returns the indexes in arrival order.
func receive(t *testing.T, c *net.UDPConn, n int) []uint32 {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Error(err)
		return nil
	}
	got := make([]uint32, 0, n)
	buf := make([]byte, 2000)
	for len(got) < n {
		m, err := c.Read(buf)
		if err != nil {
			t.Errorf("after %d of %d datagrams: %v", len(got), n, err)
			return got
		}
		if m != 1100 {
			t.Errorf("datagram of %d bytes, want 1100", m)
		}
		got = append(got, binary.BigEndian.Uint32(buf))
	}
	return got
}

func datagram(i uint32) []byte {
	b := make([]byte, 1100)
	binary.BigEndian.PutUint32(b, i)
	return b
}

func TestQueuedDatagramsAllLeaveInOrderByTheEndOfTheFanOut(t *testing.T) {
	for _, n := range []int{1, Size - 1, Size, 3*Size + 5} {
		t.Run(fmt.Sprintf("%d datagrams to each of 3 receivers", n), func(t *testing.T) {
			g := NewGroup()
			c := NewConn(listen(t), g)
			if !c.ipv4 {
				t.Log("no batching on this platform: the datagrams go out one per call, and must still all arrive")
			}
			receivers := []*net.UDPConn{listen(t), listen(t), listen(t)}
			// Read while sending: more than ~90 datagrams of this size overflow a receive
			// buffer of the default size.
			results := make([][]uint32, len(receivers))
			var wg sync.WaitGroup
			for i, r := range receivers {
				wg.Go(func() { results[i] = receive(t, r, n) })
			}
			g.Begin()
			for i := range n {
				for _, r := range receivers {
					if _, err := c.WriteToAddrPort(datagram(uint32(i)), addrOf(r)); err != nil {
						t.Error(err)
					}
				}
				if i%32 == 31 {
					time.Sleep(time.Millisecond) // let the readers keep up
				}
			}
			g.End()
			wg.Wait()
			for _, got := range results {
				for i, v := range got {
					if v != uint32(i) {
						t.Fatalf("datagram %d carries %d: out of order", i, v)
					}
				}
			}
		})
	}
}

func TestWritesOutsideAFanOutLeaveAtOnce(t *testing.T) {
	g := NewGroup()
	c := NewConn(listen(t), g)
	r := listen(t)
	if _, err := c.WriteTo(datagram(7), r.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, r, 1); got[0] != 7 {
		t.Fatalf("got %d", got[0])
	}
}

func TestConcurrentFanOutsLoseNothing(t *testing.T) {
	g := NewGroup()
	conns := []*Conn{NewConn(listen(t), g), NewConn(listen(t), g)}
	r := listen(t)
	if err := r.SetReadBuffer(4 << 20); err != nil {
		t.Fatal(err)
	}
	const writers, perWriter = 4, 100
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				g.Begin()
				_, _ = conns[(w+i)%2].WriteToAddrPort(datagram(uint32(w*perWriter+i)), addrOf(r))
				g.End()
			}
		})
	}
	wg.Wait()
	got := receive(t, r, writers*perWriter)
	seen := make(map[uint32]bool)
	for _, v := range got {
		seen[v] = true
	}
	if len(seen) != writers*perWriter {
		t.Fatalf("%d distinct datagrams of %d", len(seen), writers*perWriter)
	}
}

// BenchmarkFanOut sends one 1100-byte datagram to each of 100 loopback receivers per op: one
// sendto per datagram, against one sendmmsg per 64. The receivers do not read (see below),
// so the figures leave out waking them, which on loopback the sender pays too.
//
//	go test ./media/internal/udpbatch -run '^$' -bench FanOut -benchmem
func BenchmarkFanOut(b *testing.B) {
	const receivers = 100
	dsts := make([]netip.AddrPort, receivers)
	for i := range dsts {
		r := listen(b)
		dsts[i] = addrOf(r)
		// Nobody reads: once a receiver's buffer is full the kernel drops what arrives, after
		// the whole send path and most of the receive path (all but waking a reader).
		_ = r
	}
	payload := datagram(0)
	for _, batched := range []bool{false, true} {
		b.Run(fmt.Sprintf("batched=%v", batched), func(b *testing.B) {
			g := NewGroup()
			c := NewConn(listen(b), g)
			b.ReportAllocs()
			for b.Loop() {
				if batched {
					g.Begin()
				}
				for _, d := range dsts {
					if _, err := c.WriteToAddrPort(payload, d); err != nil {
						b.Fatal(err)
					}
				}
				if batched {
					g.End()
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/receivers, "ns/datagram")
		})
	}
}
