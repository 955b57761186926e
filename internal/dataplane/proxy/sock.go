package proxy

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The hot path talks to the kernel with raw, non-blocking system calls:
// no allocation per call, no scheduler hand-off (RawSyscall) for calls
// that cannot block. Only epoll_wait blocks, and it goes through Syscall.

// sockaddr is a prebuilt struct sockaddr_in/_in6 for connect(2), built
// once per destination and shared read-only by every worker.
type sockaddr struct {
	raw [unix.SizeofSockaddrInet6]byte
	len uint32
	af  int
}

func makeSockaddr(ap netip.AddrPort) sockaddr {
	var s sockaddr
	a := ap.Addr().Unmap()
	if a.Is4() {
		s.af, s.len = unix.AF_INET, unix.SizeofSockaddrInet4
		binary.NativeEndian.PutUint16(s.raw[0:], unix.AF_INET)
		binary.BigEndian.PutUint16(s.raw[2:], ap.Port())
		b := a.As4()
		copy(s.raw[4:], b[:])
		return s
	}
	s.af, s.len = unix.AF_INET6, unix.SizeofSockaddrInet6
	binary.NativeEndian.PutUint16(s.raw[0:], unix.AF_INET6)
	binary.BigEndian.PutUint16(s.raw[2:], ap.Port())
	b := a.As16()
	copy(s.raw[8:], b[:])
	if z := a.Zone(); z != "" {
		if ifi, err := net.InterfaceByName(z); err == nil {
			binary.NativeEndian.PutUint32(s.raw[24:], uint32(ifi.Index))
		}
	}
	return s
}

// addrFromRaw decodes what accept4 or recvfrom filled in.
func addrFromRaw(raw *unix.RawSockaddrAny) netip.AddrPort {
	b := (*[unix.SizeofSockaddrInet6]byte)(unsafe.Pointer(raw))
	port := binary.BigEndian.Uint16(b[2:])
	switch raw.Addr.Family {
	case unix.AF_INET:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), port)
	case unix.AF_INET6:
		a := netip.AddrFrom16([16]byte(b[8:24])).Unmap()
		return netip.AddrPortFrom(a, port)
	}
	return netip.AddrPort{}
}

func errnoErr(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

func sysRead(fd int, p []byte) (int, error) {
	for {
		n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, e
		}
		return int(n), nil
	}
}

func sysWrite(fd int, p []byte) (int, error) {
	for {
		n, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, e
		}
		return int(n), nil
	}
}

// sysSend is write(2) with send(2)'s flags: MSG_MORE holds a short segment
// back so that a FIN sent next rides on it.
func sysSend(fd int, p []byte, flags int) (int, error) {
	for {
		n, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)), uintptr(flags), 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, e
		}
		return int(n), nil
	}
}

func sysSplice(in, out, n, flags int) (int, error) {
	for {
		r, _, e := unix.RawSyscall6(unix.SYS_SPLICE, uintptr(in), 0, uintptr(out), 0, uintptr(n), uintptr(unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK|flags))
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, e
		}
		return int(r), nil
	}
}

func sysAccept(fd int, sa *unix.RawSockaddrAny) (int, error) {
	for {
		l := uint32(unix.SizeofSockaddrAny)
		r, _, e := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(fd), uintptr(unsafe.Pointer(sa)), uintptr(unsafe.Pointer(&l)), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return -1, e
		}
		return int(r), nil
	}
}

func sysSocket(af int) (int, error) {
	r, _, e := unix.RawSyscall(unix.SYS_SOCKET, uintptr(af), unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

func sysConnect(fd int, sa *sockaddr) error {
	_, _, e := unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa.raw)), uintptr(sa.len))
	return errnoErr(e)
}

func setInt(fd, level, opt, v int) error {
	_, _, e := unix.RawSyscall6(unix.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt), uintptr(unsafe.Pointer(&v)), 4, 0)
	return errnoErr(e)
}

func getInt(fd, level, opt int) (int, error) {
	var v int32
	l := uint32(4)
	_, _, e := unix.RawSyscall6(unix.SYS_GETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt), uintptr(unsafe.Pointer(&v)), uintptr(unsafe.Pointer(&l)), 0)
	return int(v), errnoErr(e)
}

// setRST makes close(2) send a reset instead of a FIN (SO_LINGER 0), which
// is how a proxy passes a reset on, or drops an expired connection as IPVS
// does (the client's next segment would be answered with a reset).
func setRST(fd int) {
	l := unix.Linger{Onoff: 1, Linger: 0}
	unix.RawSyscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_LINGER, uintptr(unsafe.Pointer(&l)), unsafe.Sizeof(l), 0)
}

func sysShutdownWrite(fd int) error {
	_, _, e := unix.RawSyscall(unix.SYS_SHUTDOWN, uintptr(fd), unix.SHUT_WR, 0)
	return errnoErr(e)
}

func sysClose(fd int) {
	unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
}

// getTCPInfo fills ti for fd without allocating.
func getTCPInfo(fd int, ti *unix.TCPInfo) error {
	l := uint32(unsafe.Sizeof(*ti))
	_, _, e := unix.RawSyscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.IPPROTO_TCP, unix.TCP_INFO, uintptr(unsafe.Pointer(ti)), uintptr(unsafe.Pointer(&l)), 0)
	return errnoErr(e)
}

// freebind lets a socket bind an address that is not (yet) local: a backup
// director listens on the VIP before VRRP gives it the address, so it
// serves the moment it becomes master.
func freebind(fd int, v6 bool) error {
	if v6 {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_FREEBIND, 1); err == nil {
			return nil
		}
	}
	return unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_FREEBIND, 1)
}

// listenTCP opens a non-blocking listening socket on ap with IP_FREEBIND
// and SO_REUSEPORT, so that each worker gets its own accept queue and the
// kernel spreads new connections over them.
func listenTCP(ap netip.AddrPort) (int, error) {
	v6 := !ap.Addr().Unmap().Is4()
	af := unix.AF_INET
	if v6 {
		af = unix.AF_INET6
	}
	fd, err := unix.Socket(af, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	opts := []struct {
		level, opt int
		name       string
	}{
		{unix.SOL_SOCKET, unix.SO_REUSEADDR, "SO_REUSEADDR"},
		{unix.SOL_SOCKET, unix.SO_REUSEPORT, "SO_REUSEPORT"},
		{unix.IPPROTO_TCP, unix.TCP_NODELAY, "TCP_NODELAY"},
	}
	if v6 {
		opts = append(opts, struct {
			level, opt int
			name       string
		}{unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, "IPV6_V6ONLY"})
	}
	for _, o := range opts {
		if err := unix.SetsockoptInt(fd, o.level, o.opt, 1); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("setsockopt %s: %w", o.name, err)
		}
	}
	if err := freebind(fd, v6); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("setsockopt IP_FREEBIND: %w", err)
	}
	if err := unix.Bind(fd, toSockaddr(ap)); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("bind %s: %w", ap, err)
	}
	if err := unix.Listen(fd, 65535); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("listen %s: %w", ap, err)
	}
	return fd, nil
}

func toSockaddr(ap netip.AddrPort) unix.Sockaddr {
	a := ap.Addr().Unmap()
	if a.Is4() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: a.As4()}
	}
	sa := &unix.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}
	if z := a.Zone(); z != "" {
		if ifi, err := net.InterfaceByName(z); err == nil {
			sa.ZoneId = uint32(ifi.Index)
		}
	}
	return sa
}
