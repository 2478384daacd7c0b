package udpbatch

import (
	"net/netip"
	"syscall"
	"testing"
	"time"
)

// BenchmarkPacedFanOut sends what an SFU sends for one 720p publisher and 100 subscribers:
// a fan-out of 100 datagrams every 3.5 ms (≈ 285 packets/s), batched, with the goroutine idle
// in between. Unlike BenchmarkFanOut's tight loop it shows what the idle gaps cost: the Go
// runtime's reaction to system calls (sysmon waking, P hand-offs, thread wake-ups), which
// lands on other threads than the sender's. cpu-ns/datagram is the whole process's user +
// system time (getrusage) per datagram, so it holds on a busy machine where wall time does
// not; nothing else runs in the process.
//
//	go test ./media/internal/udpbatch -run '^$' -bench PacedFanOut -benchtime 1000x -count 3
func BenchmarkPacedFanOut(b *testing.B) {
	const receivers = 100
	const interval = 3500 * time.Microsecond
	dsts := make([]netip.AddrPort, receivers)
	for i := range dsts {
		dsts[i] = addrOf(listen(b)) // nobody reads, as in BenchmarkFanOut
	}
	payload := datagram(0)
	g := NewGroup()
	c := NewConn(listen(b), g)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	b.ReportAllocs()
	cpu0 := processCPU(b)
	for b.Loop() {
		<-tick.C
		g.Begin()
		for _, d := range dsts {
			if _, err := c.WriteToAddrPort(payload, d); err != nil {
				b.Fatal(err)
			}
		}
		g.End()
	}
	cpu := processCPU(b) - cpu0
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/receivers, "cpu-ns/datagram")
}

func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
