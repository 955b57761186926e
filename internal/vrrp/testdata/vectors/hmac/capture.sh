#!/bin/sh
# Captures the auth_hmac golden vectors from keepalived 2.4.3 (root, netns).
# Usage: capture.sh [KEEPALIVED]   (default /opt/keepalived-2.4.3/sbin/keepalived)
# Each case runs keepalived alone as MASTER in namespace hv-ka (198.18.0.11,
# fe80::ac:ff:fe00:11 on hv-ka-eth), a peer namespace hv-cap captures with
# tcpdump; the first advert of each case goes to CASE.txt with the config.
set -eu
KA=${1:-/opt/keepalived-2.4.3/sbin/keepalived}
OUT=$(cd "$(dirname "$0")" && pwd)
KEY1=hex:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
KEY7=vipd-golden-vector-key-0123456789
cleanup() { ip netns del hv-ka 2>/dev/null || true; ip netns del hv-cap 2>/dev/null || true; }
trap cleanup EXIT
cleanup
ip netns add hv-ka; ip netns add hv-cap
ip link add hv-ka-eth netns hv-ka address 02:ac:00:00:00:11 type veth peer name hv-cap-eth netns hv-cap address 02:ac:00:00:00:12
ip -n hv-ka link set lo up; ip -n hv-cap link set lo up
ip -n hv-ka addr add 198.18.0.11/24 dev hv-ka-eth; ip -n hv-cap addr add 198.18.0.12/24 dev hv-cap-eth
ip -n hv-ka addr add fe80::ac:ff:fe00:11/64 dev hv-ka-eth nodad
ip -n hv-ka link set hv-ka-eth up; ip -n hv-cap link set hv-cap-eth up
sleep 1

run() { # name version family unicast key active extra-vip desc
  name=$1 ver=$2 fam=$3 uni=$4 desc=$5
  dir=$(mktemp -d)
  if [ "$fam" = 6 ]; then vips="fe80::100/64 dev hv-ka-eth
        fd00::100/64 dev hv-ka-eth"; filt="ip6 proto 112"; else vips="198.18.0.100/24 dev hv-ka-eth"; filt="ip proto 112"; fi
  peers=""
  if [ "$uni" = yes ]; then peers="unicast_src_ip 198.18.0.11
    unicast_peer {
        198.18.0.12
    }"; fi
  cat > "$dir/k.conf" <<CONF
global_defs {
    router_id hv
    vrrp_version $ver
}
vrrp_instance VI_1 {
    state MASTER
    interface hv-ka-eth
    virtual_router_id 61
    priority 100
    advert_int 1
    $peers
    auth_hmac {
        key 1 $KEY1
        key 7 $KEY7
        active_key $([ "$name" = v3_ipv4_key7 ] && echo 7 || echo 1)
    }
    virtual_ipaddress {
        $vips
    }
}
CONF
  ip netns exec hv-cap timeout 8 tcpdump -i hv-cap-eth -nn -vv -xx -t -c 1 "$filt" > "$dir/cap" 2>/dev/null &
  tp=$!
  sleep 1
  ip netns exec hv-ka "$KA" -n -l -D -P -f "$dir/k.conf" -p "$dir/pid" -r "$dir/vpid" >/dev/null 2>&1 &
  kp=$!
  wait $tp || true
  kill $kp 2>/dev/null || true; wait $kp 2>/dev/null || true
  { echo "# $desc (keepalived 2.4.3, capture.sh)"; cat "$dir/cap"; echo; echo "# keepalived.conf:"; sed 's/^/# /' "$dir/k.conf"; } > "$OUT/$name.txt"
  rm -rf "$dir"
}
run v3_ipv4 3 4 no "VRRPv3 IPv4 multicast advert, vrid 61, prio 100, advert_int 1, VIP 198.18.0.100, auth_hmac key 1 (hex 00..1f) active"
run v3_ipv4_key7 3 4 no "VRRPv3 IPv4 multicast advert, vrid 61, auth_hmac key 7 (ASCII vipd-golden-vector-key-0123456789) active"
run v2_ipv4 2 4 no "VRRPv2 IPv4 multicast advert, vrid 61, prio 100, advert_int 1, VIP 198.18.0.100, auth_hmac key 1 active"
run v3_ipv4_unicast 3 4 yes "VRRPv3 IPv4 unicast advert 198.18.0.11 > 198.18.0.12, vrid 61, auth_hmac key 1 active"
run v3_ipv6 3 6 no "VRRPv3 IPv6 multicast advert from fe80::ac:ff:fe00:11, vrid 61, VIPs fe80::100 fd00::100, auth_hmac key 1 active"
