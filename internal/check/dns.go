package check

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strings"

	"golang.org/x/net/dns/dnsmessage"
)

// DNS is DNS_CHECK: one query over UDP (recursion desired); the server is
// up when a response with the query's id comes back with RCODE NOERROR.
// Replies with another id, and queries, are ignored until the timeout, as
// keepalived does. No answer record is required.
type DNS struct {
	Endpoint
	Type dnsmessage.Type // default SOA
	Name string          // default "."
}

// DNSType parses DNS_CHECK's type keyword (A, NS, CNAME, SOA, MX, TXT,
// AAAA).
func DNSType(s string) (dnsmessage.Type, error) {
	switch strings.ToUpper(s) {
	case "A":
		return dnsmessage.TypeA, nil
	case "NS":
		return dnsmessage.TypeNS, nil
	case "CNAME":
		return dnsmessage.TypeCNAME, nil
	case "SOA":
		return dnsmessage.TypeSOA, nil
	case "MX":
		return dnsmessage.TypeMX, nil
	case "TXT":
		return dnsmessage.TypeTXT, nil
	case "AAAA":
		return dnsmessage.TypeAAAA, nil
	}
	return 0, fmt.Errorf("DNS_CHECK type %q: want A, NS, CNAME, SOA, MX, TXT or AAAA", s)
}

// Check sends one query.
func (c *DNS) Check(ctx context.Context) Result {
	ctx, cancel := c.attemptContext(ctx)
	defer cancel()
	q, id, err := c.query()
	if err != nil {
		return down("%s", err)
	}
	conn, release, err := connectGuarded(ctx, c.dialUDP) // lastchance.go
	if err != nil {
		return down("%s", reason("connect", err))
	}
	defer release()
	if _, err := conn.Write(q); err != nil {
		return down("%s", reason("send", ctxErr(ctx, err)))
	}
	buf := make([]byte, 1500)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return down("%s", reason("recv", ctxErr(ctx, err)))
		}
		ok, rcode := dnsReply(buf[:n], id)
		if !ok {
			continue
		}
		if rcode != dnsmessage.RCodeSuccess {
			return down("DNS rcode %d (%s)", rcode, strings.TrimPrefix(rcode.String(), "RCode"))
		}
		return up("DNS NOERROR")
	}
}

func (c *DNS) query() ([]byte, uint16, error) {
	name := c.Name
	if name == "" {
		name = "."
	}
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	n, err := dnsmessage.NewName(name)
	if err != nil {
		return nil, 0, fmt.Errorf("DNS_CHECK name %q: %w", c.Name, err)
	}
	typ := c.Type
	if typ == 0 {
		typ = dnsmessage.TypeSOA
	}
	var idb [2]byte
	_, _ = rand.Read(idb[:])
	id := binary.BigEndian.Uint16(idb[:])
	m := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: id, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: n, Type: typ, Class: dnsmessage.ClassINET}},
	}
	b, err := m.Pack()
	if err != nil {
		return nil, 0, fmt.Errorf("DNS_CHECK query: %w", err)
	}
	return b, id, nil
}

// dnsReply says whether b is a response to query id, and its RCODE. Only
// the header is read: like keepalived, the answer section is not checked.
func dnsReply(b []byte, id uint16) (bool, dnsmessage.RCode) {
	var p dnsmessage.Parser
	h, err := p.Start(b)
	if err != nil || h.ID != id || !h.Response {
		return false, 0
	}
	return true, h.RCode
}
