//go:build linux && (amd64 || arm64)

package udpbatch

import (
	"net"
	"net/netip"
	"os"
	"sync"
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

// rawIO is a socket's single-datagram reads and writes as raw system calls, for the same
// reason as sendmmsg above: Pion's UDP mux reads every datagram the node receives through
// here, and each read announced as a system call (entersyscall) wakes sysmon from its deep
// sleep and resets it to polling every 20 µs. With a packet every few milliseconds it then
// never slept deeply again: on a node forwarding one camera to 100 subscribers, sysmon's
// wake-ups were the largest part of the scheduler's cost. The socket is non-blocking: EAGAIN
// goes back to Go's poller, which parks the goroutine as a normal read would.
//
// Each direction keeps its call's arguments here, under its own lock; the callbacks are
// method values made once, so nothing is allocated per datagram.
type rawIO struct {
	readMu   sync.Mutex
	readBuf  []byte
	from     syscall.RawSockaddrInet4
	fromLen  uint32
	readN    int
	readErr  syscall.Errno
	readFunc func(fd uintptr) bool

	writeMu   sync.Mutex
	writeBuf  []byte
	to        syscall.RawSockaddrInet4
	writeN    int
	writeErr  syscall.Errno
	writeFunc func(fd uintptr) bool
}

func (r *rawIO) init() {
	r.readFunc = r.recvfrom
	r.writeFunc = r.sendto
	r.to.Family = syscall.AF_INET
}

// read receives one datagram from an IPv4 socket.
func (r *rawIO) read(conn *net.UDPConn, b []byte) (int, netip.AddrPort, error) {
	if len(b) == 0 {
		return conn.ReadFromUDPAddrPort(b)
	}
	raw, err := conn.SyscallConn()
	if err != nil {
		return 0, netip.AddrPort{}, err
	}
	r.readMu.Lock()
	defer r.readMu.Unlock()
	r.readBuf = b
	err = raw.Read(r.readFunc)
	r.readBuf = nil
	if err != nil {
		return 0, netip.AddrPort{}, err
	}
	if r.readErr != 0 {
		return 0, netip.AddrPort{}, &net.OpError{Op: "read", Net: "udp", Source: conn.LocalAddr(),
			Err: os.NewSyscallError("recvfrom", r.readErr)}
	}
	if r.from.Family != syscall.AF_INET {
		return r.readN, netip.AddrPort{}, nil // no IPv4 sender: the caller rejects the address
	}
	p := (*[2]byte)(unsafe.Pointer(&r.from.Port))
	port := uint16(p[0])<<8 | uint16(p[1])
	return r.readN, netip.AddrPortFrom(netip.AddrFrom4(r.from.Addr), port), nil
}

func (r *rawIO) recvfrom(fd uintptr) bool {
	r.fromLen = syscall.SizeofSockaddrInet4
	r.from.Family = 0
	n, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd,
		uintptr(unsafe.Pointer(&r.readBuf[0])), uintptr(len(r.readBuf)), 0,
		uintptr(unsafe.Pointer(&r.from)), uintptr(unsafe.Pointer(&r.fromLen)))
	if errno == syscall.EAGAIN {
		return false
	}
	r.readN, r.readErr = int(n), errno
	return true
}

// write sends one datagram to an IPv4 address from an IPv4 socket.
func (r *rawIO) write(conn *net.UDPConn, b []byte, addr netip.AddrPort) (int, error) {
	if len(b) == 0 {
		return conn.WriteToUDPAddrPort(b, addr)
	}
	raw, err := conn.SyscallConn()
	if err != nil {
		return 0, err
	}
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	r.writeBuf = b
	r.to.Addr = addr.Addr().As4()
	p := (*[2]byte)(unsafe.Pointer(&r.to.Port))
	p[0], p[1] = byte(addr.Port()>>8), byte(addr.Port())
	err = raw.Write(r.writeFunc)
	r.writeBuf = nil
	if err != nil {
		return 0, err
	}
	if r.writeErr != 0 {
		return 0, &net.OpError{Op: "write", Net: "udp", Source: conn.LocalAddr(),
			Addr: net.UDPAddrFromAddrPort(addr), Err: os.NewSyscallError("sendto", r.writeErr)}
	}
	return r.writeN, nil
}

func (r *rawIO) sendto(fd uintptr) bool {
	n, _, errno := syscall.RawSyscall6(syscall.SYS_SENDTO, fd,
		uintptr(unsafe.Pointer(&r.writeBuf[0])), uintptr(len(r.writeBuf)), 0,
		uintptr(unsafe.Pointer(&r.to)), syscall.SizeofSockaddrInet4)
	if errno == syscall.EAGAIN {
		return false
	}
	r.writeN, r.writeErr = int(n), errno
	return true
}
