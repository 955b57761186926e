# Reference model of the kernel's sh, dh and mh schedulers, written from
# the kernel's algorithm definitions, independent of the Go code. The
# expected values of sched_sh_test.go, sched_dh_test.go, sched_mh_test.go
# and sched_hash_test.go come from it (python3 -i sched_reference.py).
#
import ipaddress
from sched_siphash import siphash

def fold(addr):
    a = ipaddress.ip_address(addr)
    if a.version == 4:
        return int(a)
    x = int(a)
    return ((x >> 96) ^ (x >> 64) ^ (x >> 32) ^ x) & 0xffffffff

def hash_32(v, bits):
    return ((v * 0x61C88647) & 0xffffffff) >> (32 - bits)

def hsiphash(k, word):
    return siphash(k, k, (word & 0xffffffff).to_bytes(4, 'little')) & 0xffffffff

K1, K2 = 2654435761, 2654446892
SIZE = 4093

def sh_table(dests):  # dests: list of (name, weight) in list order
    t = []
    p = 0; cnt = 0
    for i in range(256):
        name, w = dests[p]
        t.append(name)
        cnt += 1
        if cnt >= w:
            p = (p + 1) % len(dests); cnt = 0
    return t

def sh_hash(addr, port, off=0):
    return (off + hash_32((port + fold(addr)) & 0xffffffff, 8)) & 255

def mh_table(dests):  # dests: list of (name, addr, port, lastweight)
    ws = [d[3] for d in dests if d[3] > 0]
    from math import gcd
    g = 0
    for w in ws: g = w if g == 0 else gcd(g, w)
    if g == 0: return [None]*SIZE
    mw = max(d[3] for d in dests)
    shift = max((mw // g).bit_length() - 6, 0)
    st = []
    for name, addr, port, lw in dests:
        off = hsiphash(K1, port + fold(addr)) % SIZE
        skip = hsiphash(K2, port + fold(addr)) % (SIZE - 1) + 1
        turns = (lw // g) >> shift
        if turns == 0 and lw != 0: turns = 1
        st.append([name, off, skip, turns])
    used = [False]*SIZE; t = [None]*SIZE; n = 0
    while True:
        for s in st:
            for _ in range(s[3]):
                c = s[1]
                while used[c]:
                    s[1] = (s[1] + s[2]) % SIZE; c = s[1]
                used[c] = True; t[c] = s[0]; n += 1
                if n == SIZE: return t

def mh_slot(addr, port, off=0):
    return hsiphash(K1, off + port + fold(addr)) % SIZE

def fnv1a(s):
    """FNV-1a 64 of a string: the tests compare whole tables by it."""
    h = 0xcbf29ce484222325
    for ch in s.encode():
        h ^= ch
        h = (h * 0x100000001b3) & ((1 << 64) - 1)
    return h
