// SPDX-License-Identifier: (Apache-2.0 OR GPL-2.0-only)
//
// xdplb: vipd's XDP data plane, LVS-DR forwarding in the driver.
//
// For a packet to a virtual service (VIP, port, protocol in `services`):
//   1. the flow table (`flows`, 5-tuple -> destination) keeps an open flow
//      on its real server, whatever happened to the Maglev table since
//      (a TCP SYN, which opens a new connection, skips it);
//   2. otherwise, for a persistent service (persistence_timeout), the
//      client's entry in `persist` (service, client address under the
//      persistence_granularity mask -> real server) if it is fresh;
//   3. otherwise the service's Maglev table (`maglev`, a map in a map that
//      userspace swaps whole) picks the real server from a hash of the
//      client address (and source port under mh-port);
//   4. DR: the frame's destination MAC becomes the real server's, its
//      source MAC the director's; IP and L4 headers are not touched (the
//      real server holds the VIP on lo and answers the client itself).
//      TUN (IPIP or GUE): an outer IPv4 header from the director to the real
//      server goes in front of the packet (the real server decapsulates
//      on tunl0, which holds the VIP) and the MACs are the next hop's;
//      a packet that would exceed the interface's MTU once encapsulated
//      gets an ICMP "fragmentation needed" back (DF set and no IP
//      options), or is dropped; counted either way.
//   5. the frame leaves again: XDP_TX on the interface it came in on,
//      bpf_redirect to another one.
// Everything else is XDP_PASS: ARP, VRRP, the director's own traffic,
// fragments, and what cannot be parsed (the kernel then counts and drops
// it as usual). Why each packet passed is counted in `reasons`.
//
// The Go mirror of every struct and constant is in ../maps.go; keep both
// in step (TestLayout checks the sizes against the BTF).
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MAX_SERVICES 1024
#define MAX_DESTS 16384
#define MAGLEV_SIZE 65537 /* prime; table slot 0 holds the size in use */

/* svc_val.flags */
#define SVC_F_HASH_PORT 1 /* mh-port: the client's port joins the hash */

/* reasons[] indexes: why a packet was passed, or what was done */
enum {
	R_TX,          /* forwarded with XDP_TX */
	R_REDIRECT,    /* forwarded to another interface */
	R_NOT_IP,      /* ARP, VLAN, anything but IPv4/IPv6 */
	R_MALFORMED,   /* truncated or bad header: the kernel drops it */
	R_FRAGMENT,    /* IPv4 fragment or IPv6 extension header */
	R_NOT_L4,      /* not TCP or UDP (VRRP, ICMP, ...) */
	R_NO_SERVICE,  /* not for a virtual service */
	R_NO_DEST,     /* service without a live destination */
	R_FLOW_HIT,    /* (counted besides R_TX) flow table hit */
	R_FLOW_NEW,    /* (counted besides R_TX) new flow scheduled */
	R_TOO_BIG,     /* TUN: too big once encapsulated: ICMP or drop */
	R_PERSIST,     /* (counted besides R_TX) new flow sent by a template */
	R_NOT_OURS,    /* multicast, broadcast, or unicast to another MAC */
	R_MAX,
};

struct svc_key {
	__u8 addr[16]; /* IPv6, or IPv4-mapped (::ffff:a.b.c.d) */
	__be16 port;
	__u8 proto;
	__u8 pad;
};

struct svc_val {
	__u32 id;          /* index into maglev and svc_stats */
	__u32 flags;       /* SVC_F_* */
	__u32 tcp_timeout; /* seconds a TCP flow entry lives without packets */
	__u32 udp_timeout;
	__u32 persist;     /* persistence_timeout in seconds; 0: not persistent */
	__u8 mask[16];     /* persistence_granularity, over the 16-byte address */
};

struct persist_key {
	__u32 svc;
	__u8 client[16]; /* masked */
};

struct flow_key {
	__u8 src[16];
	__u8 dst[16];
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};

struct flow_val {
	__u32 dest; /* index into dests */
	__u32 gen;  /* dests[dest].gen when the flow was scheduled */
	__u64 seen; /* bpf_ktime_get_ns() of the last packet, 1 s resolution */
};

struct dest_val {
	__u8 dmac[6];   /* the real server's MAC (neighbour table) */
	__u8 smac[6];   /* the director's MAC on ifindex */
	__u32 ifindex;  /* interface towards the real server */
	__u32 gen;      /* bumped each time the slot is given to a server */
	__u32 svc;      /* owning service id (for userspace adoption) */
	__u8 addr[16];  /* the real server (for userspace adoption) */
	__be16 port;
	__u8 live;      /* 0: slot free, flows to it are rescheduled */
	__u8 tun;       /* TUN_NONE (DR), TUN_IPIP or TUN_GUE */
	__u8 saddr[16]; /* TUN: outer source, the director's address */
	__u16 mtu;      /* TUN: MTU of ifindex */
	__be16 gue_port; /* TUN_GUE: the real server's GUE port */
};

#define TUN_NONE 0
#define TUN_IPIP 1
#define TUN_GUE 2

struct mac {
	__u8 addr[6];
};

struct counters {
	__u64 conns;
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct svc_key);
	__type(value, struct svc_val);
	__uint(max_entries, MAX_SERVICES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} services SEC(".maps");

struct maglev_table {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, MAGLEV_SIZE + 1);
};

/* One Maglev table per service id, swapped whole by userspace. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__type(key, __u32);
	__uint(max_entries, MAX_SERVICES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct maglev_table);
} maglev SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct dest_val);
	__uint(max_entries, MAX_DESTS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dests SEC(".maps");

/* LRU with per-CPU LRU lists (no shared lock on the fast path); entries
 * are shared, so a flow that RSS moves to another CPU keeps its server. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct flow_key);
	__type(value, struct flow_val);
	__uint(max_entries, 262144);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} flows SEC(".maps");

/* The MAC of each interface the program is attached to (ifindex -> MAC):
 * a frame for another MAC (a bridge flooding unknown unicast, another
 * director's traffic) is not forwarded, or two directors would both
 * forward it. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct mac);
	__uint(max_entries, 256);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ifmacs SEC(".maps");

/* Persistence templates: a client (or its network) keeps its real server
 * while it comes back within persistence_timeout. Value as for flows. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct persist_key);
	__type(value, struct flow_val);
	__uint(max_entries, 65536);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} persist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct counters);
	__uint(max_entries, MAX_SERVICES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} svc_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct counters);
	__uint(max_entries, MAX_DESTS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dest_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, R_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} reasons SEC(".maps");

static __always_inline int mac_eq(const __u8 *a, const __u8 *b)
{
	return ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]) | (a[4] ^ b[4]) | (a[5] ^ b[5])) == 0;
}

static __always_inline int count(__u32 reason, int verdict)
{
	__u64 *v = bpf_map_lookup_elem(&reasons, &reason);
	if (v)
		(*v)++; /* per-CPU slot: no atomics needed */
	return verdict;
}

static __always_inline void add(void *map, __u32 key, __u64 conns, __u64 bytes)
{
	struct counters *c = bpf_map_lookup_elem(map, &key);
	if (c) {
		c->conns += conns;
		c->packets++;
		c->bytes += bytes;
	}
}

/* MurmurHash3 (x86_32) over five 32-bit words; mirrored by clientHash in
 * maglev.go, so userspace can tell which server a client gets. */
static __always_inline __u32 rotl32(__u32 x, int r)
{
	return (x << r) | (x >> (32 - r));
}

static __always_inline __u32 murmur_word(__u32 h, __u32 k)
{
	k *= 0xcc9e2d51;
	k = rotl32(k, 15);
	k *= 0x1b873593;
	h ^= k;
	h = rotl32(h, 13);
	return h * 5 + 0xe6546b64;
}

/* ip_csum is the header checksum of a 20-byte IPv4 header. */
static __always_inline __u16 ip_csum(struct iphdr *ip)
{
	__u16 *w = (__u16 *)ip;
	__u32 sum = 0;
#pragma unroll
	for (int i = 0; i < 10; i++)
		sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

/* csum_words folds the one's complement sum of n 16-bit words at p. */
static __always_inline __u16 csum_words(__u16 *p, int n)
{
	__u32 sum = 0;
#pragma unroll
	for (int i = 0; i < n; i++)
		sum += p[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

/* frag_needed turns the frame into an ICMP "fragmentation needed" for its
 * sender, from the VIP, telling it the size that fits the tunnel (mtu -
 * 20), with the original IP header and 8 bytes of its payload, as IPVS's
 * tunnel transmit does through icmp_send. Only for IPv4 without options,
 * with DF set; -1 otherwise. The frame then leaves by XDP_TX. */
struct icmp_frag { /* linux/icmp.h drags in libc headers */
	__u8 type, code;
	__sum16 checksum;
	__be16 unused, mtu;
};
#define ICMP_FRAME (sizeof(struct ethhdr) + 2 * sizeof(struct iphdr) + sizeof(struct icmp_frag) + 8)
static __always_inline int frag_needed(struct xdp_md *ctx, __u16 mtu)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)ip + sizeof(*ip) + 8 > data_end)
		return -1;
	if (ip->ihl != 5 || !(ip->frag_off & bpf_htons(0x4000)))
		return -1;
	__u8 to[6], from[6];
	__builtin_memcpy(to, eth->h_source, 6);
	__builtin_memcpy(from, eth->h_dest, 6);
	__be32 client = ip->saddr, vip = ip->daddr;

	int room = sizeof(struct iphdr) + sizeof(struct icmp_frag);
	if (bpf_xdp_adjust_head(ctx, -room))
		return -1;
	int excess = (int)((long)ctx->data_end - (long)ctx->data) - (int)ICMP_FRAME;
	if (excess > 0 && bpf_xdp_adjust_tail(ctx, -excess))
		return -1;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + ICMP_FRAME > data_end)
		return -1;
	eth = data;
	__builtin_memcpy(eth->h_dest, to, 6);
	__builtin_memcpy(eth->h_source, from, 6);
	eth->h_proto = bpf_htons(ETH_P_IP);
	struct iphdr *nip = (void *)(eth + 1);
	nip->version = 4;
	nip->ihl = 5;
	nip->tos = 0xc0; /* internetwork control, as the kernel's ICMP errors */
	nip->tot_len = bpf_htons(ICMP_FRAME - sizeof(struct ethhdr));
	nip->id = 0;
	nip->frag_off = 0;
	nip->ttl = 64;
	nip->protocol = IPPROTO_ICMP;
	nip->check = 0;
	nip->saddr = vip;
	nip->daddr = client;
	nip->check = ip_csum(nip);
	struct icmp_frag *ic = (void *)(nip + 1);
	ic->type = 3; /* destination unreachable */
	ic->code = 4; /* fragmentation needed and DF set */
	ic->checksum = 0;
	ic->unused = 0;
	ic->mtu = bpf_htons(mtu - sizeof(struct iphdr));
	ic->checksum = csum_words((__u16 *)ic, (sizeof(struct icmp_frag) + sizeof(struct iphdr) + 8) / 2);
	return 0;
}

struct gue_hdr {
	__u8 ver_hlen;    /* version 0, C 0, hlen 0: no options */
	__u8 proto_ctype; /* IPPROTO_IPIP: an IPv4 packet follows */
	__be16 flags;
};

/* encap puts an outer IPv4 header (director -> real server) in front of
 * the IPv4 packet after the Ethernet header: protocol IPIP, or for GUE
 * UDP to the tunnel port with a GUE header, as IPVS encapsulates. GUE's
 * UDP source port comes from the flow's hash (as the kernel's
 * udp_flow_src_port), so the real server's RSS spreads the flows. */
static __always_inline int encap(struct xdp_md *ctx, struct dest_val *d, __u32 flow_hash)
{
	int gue = d->tun == TUN_GUE;
	int extra = sizeof(struct iphdr) + (gue ? sizeof(struct udphdr) + sizeof(struct gue_hdr) : 0);
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *inner = data + sizeof(struct ethhdr);
	if ((void *)(inner + 1) > data_end)
		return -1;
	__u32 len = data_end - (void *)inner;
	__u8 tos = inner->tos;
	__be16 df = inner->frag_off & bpf_htons(0x4000);
	if (d->mtu && len + extra > d->mtu)
		return -2;
	if (bpf_xdp_adjust_head(ctx, -extra))
		return -1;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *outer = data + sizeof(struct ethhdr);
	if ((void *)(outer + 1) > data_end)
		return -1;
	if (gue) {
		struct udphdr *uh = (void *)(outer + 1);
		struct gue_hdr *gh = (void *)(uh + 1);
		if ((void *)(gh + 1) > data_end)
			return -1;
		uh->source = bpf_htons(32768 + flow_hash % (61000 - 32768));
		uh->dest = d->gue_port;
		uh->len = bpf_htons(len + sizeof(*uh) + sizeof(*gh));
		uh->check = 0; /* optional over IPv4; IPVS's default (nocsum) */
		gh->ver_hlen = 0;
		gh->proto_ctype = IPPROTO_IPIP;
		gh->flags = 0;
	}
	eth->h_proto = bpf_htons(ETH_P_IP);
	outer->version = 4;
	outer->ihl = 5;
	outer->tos = tos;
	outer->tot_len = bpf_htons(len + extra);
	outer->id = 0;
	outer->frag_off = df;
	outer->ttl = 64;
	outer->protocol = gue ? IPPROTO_UDP : IPPROTO_IPIP;
	outer->check = 0;
	__builtin_memcpy(&outer->saddr, &d->saddr[12], 4);
	__builtin_memcpy(&outer->daddr, &d->addr[12], 4);
	outer->check = ip_csum(outer);
	return 0;
}

static __always_inline void mask_client(struct persist_key *pk, const __u8 src[16], const __u8 mask[16])
{
#pragma unroll
	for (int i = 0; i < 16; i++)
		pk->client[i] = src[i] & mask[i];
}

static __always_inline __u32 client_hash(const __u8 addr[16], __u32 port)
{
	__u32 w[4], h = 0x5eed1e55; /* same seed on every director */
	__builtin_memcpy(w, addr, 16);
	h = murmur_word(h, w[0]);
	h = murmur_word(h, w[1]);
	h = murmur_word(h, w[2]);
	h = murmur_word(h, w[3]);
	h = murmur_word(h, port);
	h ^= 20;
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	h ^= h >> 16;
	return h;
}

SEC("xdp")
int xdp_lb(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct flow_key fk = {};
	void *l4;

	if ((void *)(eth + 1) > data_end)
		return count(R_MALFORMED, XDP_PASS);
	if (eth->h_dest[0] & 1)
		return count(R_NOT_OURS, XDP_PASS); /* multicast, broadcast */
	__u32 ifx = ctx->ingress_ifindex;
	struct mac *own = bpf_map_lookup_elem(&ifmacs, &ifx);
	if (own && !mac_eq(own->addr, eth->h_dest))
		return count(R_NOT_OURS, XDP_PASS);

	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		__u32 ihl;
		if ((void *)(ip + 1) > data_end)
			return count(R_MALFORMED, XDP_PASS);
		ihl = ip->ihl * 4; /* IP options are skipped, not refused */
		if (ip->version != 4 || ihl < sizeof(*ip))
			return count(R_MALFORMED, XDP_PASS);
		if (ip->frag_off & bpf_htons(0x3fff)) /* MF or an offset */
			return count(R_FRAGMENT, XDP_PASS);
		l4 = (void *)ip + ihl;
		fk.src[10] = fk.src[11] = 0xff;
		fk.dst[10] = fk.dst[11] = 0xff;
		__builtin_memcpy(&fk.src[12], &ip->saddr, 4);
		__builtin_memcpy(&fk.dst[12], &ip->daddr, 4);
		fk.proto = ip->protocol;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > data_end)
			return count(R_MALFORMED, XDP_PASS);
		if (ip6->version != 6)
			return count(R_MALFORMED, XDP_PASS);
		if (ip6->nexthdr != IPPROTO_TCP && ip6->nexthdr != IPPROTO_UDP &&
		    ip6->nexthdr != IPPROTO_ICMPV6)
			return count(R_FRAGMENT, XDP_PASS); /* extension headers */
		l4 = ip6 + 1;
		__builtin_memcpy(fk.src, &ip6->saddr, 16);
		__builtin_memcpy(fk.dst, &ip6->daddr, 16);
		fk.proto = ip6->nexthdr;
	} else {
		return count(R_NOT_IP, XDP_PASS);
	}

	__u32 syn = 0;
	if (fk.proto == IPPROTO_TCP) {
		struct tcphdr *th = l4;
		if ((void *)(th + 1) > data_end)
			return count(R_MALFORMED, XDP_PASS);
		fk.sport = th->source;
		fk.dport = th->dest;
		syn = th->syn && !th->ack;
	} else if (fk.proto == IPPROTO_UDP) {
		struct udphdr *uh = l4;
		if ((void *)(uh + 1) > data_end)
			return count(R_MALFORMED, XDP_PASS);
		fk.sport = uh->source;
		fk.dport = uh->dest;
	} else {
		return count(R_NOT_L4, XDP_PASS);
	}

	struct svc_key sk = {};
	__builtin_memcpy(sk.addr, fk.dst, 16);
	sk.port = fk.dport;
	sk.proto = fk.proto;
	struct svc_val *svc = bpf_map_lookup_elem(&services, &sk);
	if (!svc)
		return count(R_NO_SERVICE, XDP_PASS);

	__u64 now = bpf_ktime_get_ns();
	__u64 timeout = (__u64)(fk.proto == IPPROTO_TCP ? svc->tcp_timeout : svc->udp_timeout) * 1000000000ULL;
	struct dest_val *d = NULL;
	__u32 di = 0, fresh = 0;

	/* A SYN opens a new connection: it is scheduled afresh (persistence,
	 * then Maglev) and overwrites the entry, which may be a closed
	 * connection's whose client port the client reuses: following it
	 * would send the new connection to a server drained since (weight
	 * 0), as IPVS's conn_reuse_mode avoids too. A retransmitted SYN gets
	 * the same server unless the table changed in between. */
	struct flow_val *fv = syn ? NULL : bpf_map_lookup_elem(&flows, &fk);
	if (fv && now - fv->seen < timeout) {
		di = fv->dest;
		d = bpf_map_lookup_elem(&dests, &di);
		if (d && (!d->live || d->gen != fv->gen))
			d = NULL; /* its server left: schedule again */
		if (d && now - fv->seen > 1000000000ULL) {
			fv->seen = now; /* refresh at most once a second */
			if (svc->persist) {
				struct persist_key pk = {.svc = svc->id};
				mask_client(&pk, fk.src, svc->mask);
				struct flow_val *pv = bpf_map_lookup_elem(&persist, &pk);
				if (pv && pv->dest == di)
					pv->seen = now;
			}
		}
	}
	struct persist_key pk = {.svc = svc->id};
	if (!d && svc->persist) {
		mask_client(&pk, fk.src, svc->mask);
		struct flow_val *pv = bpf_map_lookup_elem(&persist, &pk);
		if (pv && now - pv->seen < (__u64)svc->persist * 1000000000ULL) {
			di = pv->dest;
			d = bpf_map_lookup_elem(&dests, &di);
			if (d && (!d->live || d->gen != pv->gen))
				d = NULL;
			if (d) {
				pv->seen = now;
				struct flow_val nv = {.dest = di, .gen = d->gen, .seen = now};
				bpf_map_update_elem(&flows, &fk, &nv, BPF_ANY);
				fresh = 1;
				count(R_PERSIST, 0);
			}
		}
	}
	if (!d) {
		__u32 id = svc->id;
		void *table = bpf_map_lookup_elem(&maglev, &id);
		if (!table)
			return count(R_NO_DEST, XDP_PASS);
		__u32 zero = 0;
		__u32 *size = bpf_map_lookup_elem(table, &zero);
		if (!size || *size == 0)
			return count(R_NO_DEST, XDP_PASS);
		__u32 port = svc->flags & SVC_F_HASH_PORT ? bpf_ntohs(fk.sport) : 0;
		__u32 slot = client_hash(fk.src, port) % *size + 1;
		__u32 *dp = bpf_map_lookup_elem(table, &slot);
		if (!dp)
			return count(R_NO_DEST, XDP_PASS);
		di = *dp;
		d = bpf_map_lookup_elem(&dests, &di);
		if (!d || !d->live)
			return count(R_NO_DEST, XDP_PASS);
		struct flow_val nv = {.dest = di, .gen = d->gen, .seen = now};
		bpf_map_update_elem(&flows, &fk, &nv, BPF_ANY);
		if (svc->persist)
			bpf_map_update_elem(&persist, &pk, &nv, BPF_ANY);
		fresh = 1;
		count(R_FLOW_NEW, 0);
	} else if (!fresh) {
		count(R_FLOW_HIT, 0);
	}

	__u64 bytes = data_end - data - sizeof(struct ethhdr); /* IP bytes, as IPVS counts */
	add(&svc_stats, svc->id, fresh, bytes);
	add(&dest_stats, di, fresh, bytes);

	if (d->tun != TUN_NONE) {
		__u32 h = murmur_word(client_hash(fk.src, bpf_ntohs(fk.sport)), fk.dport);
		int err = encap(ctx, d, h);
		if (err == -2) {
			count(R_TOO_BIG, 0);
			if (frag_needed(ctx, d->mtu))
				return XDP_DROP;
			return XDP_TX;
		}
		if (err)
			return count(R_MALFORMED, XDP_DROP);
		data = (void *)(long)ctx->data;
		data_end = (void *)(long)ctx->data_end;
		eth = data;
		if ((void *)(eth + 1) > data_end)
			return XDP_DROP;
	}
	__builtin_memcpy(eth->h_dest, d->dmac, 6);
	__builtin_memcpy(eth->h_source, d->smac, 6);
	if (d->ifindex == ctx->ingress_ifindex)
		return count(R_TX, XDP_TX);
	count(R_REDIRECT, 0);
	return bpf_redirect(d->ifindex, 0);
}

/* xdp_pass lets a veth deliver XDP_TX frames of its peer: on veth, frames
 * sent with XDP_TX leave only when the peer veth runs an XDP program. */
SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

/* Dual-licensed; the kernel is told the GPL side. */
char LICENSE[] SEC("license") = "GPL";
