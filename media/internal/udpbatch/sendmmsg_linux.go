//go:build linux && (amd64 || arm64)

package udpbatch

import (
	"net"
	"syscall"
	"unsafe"
)

const batchSupported = true

// mmsghdr is struct mmsghdr from <sys/socket.h> on 64-bit Linux.
type mmsghdr struct {
	hdr syscall.Msghdr
	len uint32
	_   [4]byte
}

// sysBatch is a batch as sendmmsg(2) sees it. Every pointer in it points into the batch
// itself, so it is built once and only the lengths and addresses change.
type sysBatch struct {
	b     *batch
	hdrs  [Size]mmsghdr
	iovs  [Size]syscall.Iovec
	addrs [Size]syscall.RawSockaddrInet4

	// The arguments and results of one call of the raw connection's callback, kept here so
	// that the callback (a method value made once) does not allocate.
	from, sent int
	errno      syscall.Errno
	write      func(fd uintptr) bool
}

func (s *sysBatch) init(b *batch) {
	s.b = b
	for i := range s.hdrs {
		s.iovs[i].Base = &b.bufs[i][0]
		s.hdrs[i].hdr.Iov = &s.iovs[i]
		s.hdrs[i].hdr.Iovlen = 1
		s.hdrs[i].hdr.Name = (*byte)(unsafe.Pointer(&s.addrs[i]))
		s.hdrs[i].hdr.Namelen = syscall.SizeofSockaddrInet4
		s.addrs[i].Family = syscall.AF_INET
	}
	s.write = s.sendmmsg
}

// send sends the batch's datagrams from index from on; it reports how many left. An error
// is about datagram from, which did not leave.
func (s *sysBatch) send(conn *net.UDPConn, from int) (int, error) {
	b := s.b
	for i := from; i < b.n; i++ {
		s.iovs[i].SetLen(b.lens[i])
		a := &s.addrs[i]
		a.Addr = b.dsts[i].Addr().As4()
		port := b.dsts[i].Port()
		p := (*[2]byte)(unsafe.Pointer(&a.Port))
		p[0], p[1] = byte(port>>8), byte(port) // network byte order
	}
	raw, err := conn.SyscallConn()
	if err != nil {
		return 0, err
	}
	s.from, s.sent, s.errno = from, 0, 0
	if err := raw.Write(s.write); err != nil {
		return 0, err
	}
	if s.errno != 0 {
		return 0, s.errno
	}
	return s.sent, nil
}

// sendmmsg is the raw connection's write callback; false asks the poller to wait until the
// socket is writable.
//
// It is a raw system call, without telling the Go scheduler: the socket is non-blocking
// (EAGAIN goes back to the poller), so the call never waits, it only works, for up to a few
// hundred microseconds with 64 datagrams on loopback. Announced as a system call
// (syscall.Syscall6), a call that long outlasts sysmon's 20 µs check: sysmon hands the P to
// another thread, the caller has to get one back when the call returns, and with a fan-out
// every few milliseconds sysmon never backs off from checking every 20 µs. Those wake-ups,
// not the sends, were about a tenth of a busy node's CPU.
func (s *sysBatch) sendmmsg(fd uintptr) bool {
	n, _, errno := syscall.RawSyscall6(sysSendmmsg, fd,
		uintptr(unsafe.Pointer(&s.hdrs[s.from])), uintptr(s.b.n-s.from), 0, 0, 0)
	if errno == syscall.EAGAIN {
		return false
	}
	s.sent, s.errno = int(n), errno
	return true
}
