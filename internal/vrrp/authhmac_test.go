package vrrp

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"path/filepath"
	"testing"
)

var (
	goldenKey1, _ = hex.DecodeString("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
	goldenKey7    = []byte("vipd-golden-vector-key-0123456789")
)

// TestAuthHMACGoldenVectors verifies the HMAC of every advert keepalived
// 2.4.3 signed in the lab (testdata/vectors/hmac, capture.sh), then signs
// the decoded packet anew with the same sequence number and requires the
// identical bytes: vipd's signature is the one keepalived computes.
func TestAuthHMACGoldenVectors(t *testing.T) {
	tests := []struct {
		file    string
		version int
		keyID   uint8
		key     []byte
		naddr   int
	}{
		{"v3_ipv4.txt", 3, 1, goldenKey1, 1},
		{"v3_ipv4_key7.txt", 3, 7, goldenKey7, 1},
		{"v2_ipv4.txt", 2, 1, goldenKey1, 1},
		{"v3_ipv4_unicast.txt", 3, 1, goldenKey1, 1},
		{"v3_ipv6.txt", 3, 1, goldenKey1, 2},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			src, dst, msg := splitFrame(t, frame(t, filepath.Join("hmac", tt.file)))
			if _, err := Decode(msg, src, dst, DecodeOptions{}); err == nil {
				t.Fatal("a signed advert decoded without AuthTrailer: it must be too long, as for keepalived without auth_hmac")
			}
			p, err := Decode(msg, src, dst, DecodeOptions{AuthTrailer: true})
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			tr := p.Trailer
			if tr == nil {
				t.Fatal("no trailer decoded")
			}
			if p.Version != tt.version || p.VRID != 61 || len(p.Addrs) != tt.naddr || tr.Type != HMACTypeSHA256 || tr.KeyID != tt.keyID || tr.Reserved != 0 {
				t.Fatalf("decoded %+v trailer %+v", p, tr)
			}
			// The capture is of December 2026: the timestamp is the clock's.
			if tr.Sec < 1796000000 || tr.Sec > 1800000000 {
				t.Errorf("trailer seconds %d: not a 2026 Unix time", tr.Sec)
			}
			if !VerifyAuthDigest(tt.key, src, msg) {
				t.Fatalf("keepalived's HMAC %x does not verify; computed %x", tr.HMAC, AuthDigest(tt.key, src, msg))
			}
			other := goldenKey7
			if tt.keyID == 7 {
				other = goldenKey1
			}
			if VerifyAuthDigest(other, src, msg) {
				t.Fatal("the other key verifies too")
			}
			// Another source address (spoofing) breaks it.
			if VerifyAuthDigest(tt.key, netip.MustParseAddr("198.18.0.99"), msg) {
				t.Fatal("a different source verifies")
			}
			// Sign from scratch: same bytes.
			q := *p
			q.Trailer = &AuthTrailer{Type: tr.Type, KeyID: tr.KeyID}
			q.Trailer.SetSeq(tr.Seq())
			q.Checksum = 0
			b, err := q.Marshal(src, dst, EncodeOptions{AuthKey: tt.key})
			if err != nil {
				t.Fatal(err)
			}
			if src.Is6() {
				// The kernel writes the IPv6 checksum; compare without it.
				b[6], b[7] = msg[6], msg[7]
			}
			if !bytes.Equal(b, msg) {
				t.Fatalf("Marshal =\n %x\nwant\n %x", b, msg)
			}
			// Any flipped bit of the message or trailer fails verification;
			// the checksum field alone is outside the HMAC.
			for i := range msg {
				if i == 6 || i == 7 {
					continue
				}
				c := bytes.Clone(msg)
				c[i] ^= 0x10
				if VerifyAuthDigest(tt.key, src, c) {
					t.Fatalf("byte %d flipped still verifies", i)
				}
			}
		})
	}
}

func TestAuthTrailerSeq(t *testing.T) {
	var tr AuthTrailer
	tr.SetSeq(0x0102030405060708)
	if tr.Sec != 0x01020304 || tr.Subsec != 0x0506 || tr.Ctr != 0x0708 || tr.Seq() != 0x0102030405060708 {
		t.Fatalf("%+v", tr)
	}
}
