package vrrp

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"net/netip"
)

// The auth_hmac trailer, keepalived 2.4.2's advert authentication (wire
// format as keepalived 2.4.3 sends it; testdata/vectors/hmac holds its
// adverts): 28 bytes after the VRRP message (after the VIPs, and in
// VRRPv2 after the 8 auth bytes), outside the VRRP checksum over IPv4
// (the IPv6 checksum, the kernel's, covers the whole payload):
//
//	0      1      2-3       4-7      8-9      10-11  12-27
//	type   key_id reserved  seconds  1/65536s ctr    HMAC-SHA256, first 16 bytes
//
// The HMAC input is a 20-byte pseudo-header (4 or 6, the VRRP version,
// the VRID, a zero, the source address padded to 16 bytes), then the
// VRRP message with its checksum read as zero, then the trailer's first
// 12 bytes, then 16 zero bytes in place of the HMAC. The destination is
// not covered (unicast copies of one advert are signed once), nor the IP
// header. Seconds, fraction and counter form one 64-bit sequence number,
// compared in serial number arithmetic (RFC 1982) for anti-replay.
const (
	AuthTrailerLen = 28
	HMACTypeSHA256 = 1 // the only scheme keepalived defines
	HMACKeyMin     = 32
	HMACKeyMax     = 64
	hmacTruncLen   = 16
	hmacPseudoLen  = 20
)

// AuthTrailer is a decoded auth_hmac trailer.
type AuthTrailer struct {
	Type     uint8 // HMACTypeSHA256
	KeyID    uint8
	Reserved uint16 // zero on send; a receiver rejects non-zero
	Sec      uint32 // UTC seconds of the sender's clock
	Subsec   uint16 // fraction of the second, 1/65536 s
	Ctr      uint16 // tie breaker within one timestamp
	HMAC     [hmacTruncLen]byte
}

// Seq is the trailer's 64-bit sequence number.
func (t *AuthTrailer) Seq() uint64 {
	return uint64(t.Sec)<<32 | uint64(t.Subsec)<<16 | uint64(t.Ctr)
}

// SetSeq stores a 64-bit sequence number in the trailer's three fields.
func (t *AuthTrailer) SetSeq(seq uint64) {
	t.Sec, t.Subsec, t.Ctr = uint32(seq>>32), uint16(seq>>16), uint16(seq)
}

func decodeTrailer(b []byte) *AuthTrailer {
	t := &AuthTrailer{
		Type:     b[0],
		KeyID:    b[1],
		Reserved: binary.BigEndian.Uint16(b[2:4]),
		Sec:      binary.BigEndian.Uint32(b[4:8]),
		Subsec:   binary.BigEndian.Uint16(b[8:10]),
		Ctr:      binary.BigEndian.Uint16(b[10:12]),
	}
	copy(t.HMAC[:], b[12:28])
	return t
}

func (t *AuthTrailer) put(b []byte) {
	b[0], b[1] = t.Type, t.KeyID
	binary.BigEndian.PutUint16(b[2:4], t.Reserved)
	binary.BigEndian.PutUint32(b[4:8], t.Sec)
	binary.BigEndian.PutUint16(b[8:10], t.Subsec)
	binary.BigEndian.PutUint16(b[10:12], t.Ctr)
	copy(b[12:28], t.HMAC[:])
}

// AuthDigest computes the truncated HMAC of a signed advert. msg is the
// VRRP message followed by its trailer (the IP payload as sent); src is
// the IP source address. Whatever msg's checksum and HMAC fields hold,
// the digest reads them as zero.
func AuthDigest(key []byte, src netip.Addr, msg []byte) [hmacTruncLen]byte {
	var out [hmacTruncLen]byte
	if len(msg) < 8+AuthTrailerLen {
		return out
	}
	var pseudo [hmacPseudoLen]byte
	if src.Is4() || src.Is4In6() {
		pseudo[0] = 4
		a := src.Unmap().As4()
		copy(pseudo[4:], a[:])
	} else {
		pseudo[0] = 6
		a := src.As16()
		copy(pseudo[4:], a[:])
	}
	pseudo[1] = msg[0] >> 4 // version
	pseudo[2] = msg[1]      // VRID
	var zero [hmacTruncLen]byte
	h := hmac.New(sha256.New, key)
	h.Write(pseudo[:])
	h.Write(msg[:6])
	h.Write(zero[:2])
	h.Write(msg[8 : len(msg)-hmacTruncLen])
	h.Write(zero[:])
	copy(out[:], h.Sum(nil))
	return out
}

// VerifyAuthDigest reports, in constant time, whether msg (VRRP message
// and trailer) carries the HMAC of key.
func VerifyAuthDigest(key []byte, src netip.Addr, msg []byte) bool {
	if len(msg) < 8+AuthTrailerLen {
		return false
	}
	d := AuthDigest(key, src, msg)
	return hmac.Equal(d[:], msg[len(msg)-hmacTruncLen:])
}
