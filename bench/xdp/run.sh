#!/usr/bin/env bash
# bench/xdp/run.sh: the xdp data plane against the proxy data plane and a
# direct path, in one run, with the ratios.
#
# Lab of network namespaces on a bridge (198.18.0.0/24): a client, a
# director running two vipd daemons (--dataplane xdp for VIP .100, DR;
# --dataplane proxy for VIP .101, NAT), and a real server prepared by
# `vipctl realserver up` running nginx and a UDP sink. Rounds alternate
# direct (the real server's own address), xdp and proxy:
#
#   - small UDP packets, many flows (bench/xdp/udpflood: 64-byte frames
#     from 256 source ports): packets per second arriving at the real
#     server (its interface counter);
#   - wrk over TCP for a 1 MiB file: MiB/s at the client.
#
# Lab facts (docs/dataplanes.md): the director's peer veth runs an XDP
# program (bench/xdp/xdppass) or XDP_TX frames never leave; the client's
# veth has tx checksum offload off.
#
#   sudo bench/xdp/run.sh [-r ROUNDS] [-d SECONDS]
#
# Needs root, ip, ethtool, nginx, wrk, go. Removes everything on exit.
set -euo pipefail

ROUNDS=3 DUR=5
while [ $# -gt 0 ]; do
	case "$1" in
	-r) ROUNDS=$2; shift 2 ;;
	-d) DUR=$2; shift 2 ;;
	*) echo "usage: $0 [-r ROUNDS] [-d SECONDS]" >&2; exit 2 ;;
	esac
done
. "$(dirname "$0")/../lib.sh"
bench_lab vbx xdp ip ethtool nginx wrk go
VIPX=198.18.0.100 VIPP=198.18.0.101 RS=198.18.0.21

# Director CPU per packet: the kernel's BPF run-time statistics for the
# xdp program (kernel.bpf_stats_enabled, read from the program fds'
# fdinfo), and the proxy process's user+system CPU time.
STATS0=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -qw kernel.bpf_stats_enabled=1
bench_cleanup_more() { umount -l $TMP/bpffs 2>/dev/null; sysctl -qw kernel.bpf_stats_enabled=$STATS0; }

echo "# building" >&2
(cd "$ROOT" && for c in cmd/vipd cmd/vipctl bench/xdp/udpflood bench/xdp/xdppass; do go build -o "$TMP/$(basename $c)" ./$c; done)

host cli 198.18.0.10/24
host dir 198.18.0.11/24 $VIPX/32 $VIPP/32
host rs $RS/24
DIRPORT=$P-p2
on cli ethtool -K eth0 tx off >/dev/null
on rs "$TMP/vipctl" realserver up --vip $VIPX --state $TMP/rs.json >/dev/null

mkdir -p $TMP/www $TMP/tmp
head -c 1048576 /dev/urandom >$TMP/www/1m
cat >$TMP/nginx.conf <<EOF
worker_processes auto;
pid $TMP/nginx.pid;
error_log $TMP/nginx-error.log;
daemon off;
events { worker_connections 4096; }
http {
	access_log off;
	keepalive_requests 10000000;
	client_body_temp_path $TMP/tmp/body;
	proxy_temp_path $TMP/tmp/proxy;
	fastcgi_temp_path $TMP/tmp/fastcgi;
	uwsgi_temp_path $TMP/tmp/uwsgi;
	scgi_temp_path $TMP/tmp/scgi;
	sendfile on;
	server { listen 80 backlog=4096; root $TMP/www; }
}
EOF
spawn rs nginx -c $TMP/nginx.conf -p $TMP >$TMP/nginx.log 2>&1
PIDS+=($!)
spawn rs "$TMP/udpflood" -sink :9000 >$TMP/sink.log 2>&1
PIDS+=($!)
"$TMP/xdppass" $P-br $DIRPORT >$TMP/xdppass.log 2>&1 &
PIDS+=($!)

vs() { # vip method sched proto port
	cat <<EOF
virtual_server $1 $5 {
	lvs_sched $3
	mh-port
	lvs_method $2
	protocol $4
	real_server $RS $5 {
		weight 1
	}
}
EOF
}
{ vs $VIPX DR mh TCP 80; vs $VIPX DR mh UDP 9000; } >$TMP/xdp.conf
{ vs $VIPP NAT rr TCP 80; vs $VIPP NAT rr UDP 9000; } | sed '/mh-port/d' >$TMP/proxy.conf
mkdir $TMP/bpffs && mount -t bpf bpf $TMP/bpffs
spawn dir "$TMP/vipd" -n -l -f $TMP/xdp.conf --dataplane xdp --xdp-pins $TMP/bpffs/vipd -p $TMP/x.pid --control $TMP/x.sock >$TMP/vipd-xdp.log 2>&1
PIDS+=($!)
spawn dir "$TMP/vipd" -n -l -f $TMP/proxy.conf --dataplane proxy -p $TMP/p.pid --control $TMP/p.sock >$TMP/vipd-proxy.log 2>&1
PIDS+=($!)

ok=""
for _ in $(seq 200); do
	if on cli curl -sf -o /dev/null -m 1 http://$VIPX/1m && on cli curl -sf -o /dev/null -m 1 http://$VIPP/1m && on cli curl -sf -o /dev/null -m 1 http://$RS/1m; then ok=1; break; fi
	sleep 0.1
done
[ -n "$ok" ] || { echo "$0: the three paths do not all serve" >&2; tail -n 20 $TMP/*.log >&2; exit 1; }

rxpkts() { on rs ip -s -j link show eth0 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["stats64"]["rx"]["packets"])'; }

# dircpu path -> nanoseconds of director CPU so far: the xdp program's
# run time (all its runs), or the proxy vipd's user+system time.
TICK_NS=$(( 1000000000 / $(getconf CLK_TCK) ))
dircpu() {
	case $1 in
	xdp) cat /proc/$(cat $TMP/x.pid)/fdinfo/* 2>/dev/null | awk '/^run_time_ns:/ { t += $2 } END { printf "%.0f\n", t }' ;;
	proxy) awk -v k=$TICK_NS '{ printf "%.0f\n", ($14 + $15) * k }' /proc/$(cat $TMP/p.pid)/stat ;;
	*) echo 0 ;;
	esac
}
udp() { # path target -> "pps ns-per-packet": pps arriving at the real server, director CPU per packet
	local a b c0 c1
	a=$(rxpkts) c0=$(dircpu $1)
	on cli "$TMP/udpflood" -to $2:9000 -d ${DUR}s >/dev/null
	b=$(rxpkts) c1=$(dircpu $1)
	echo $(( (b - a) / DUR )) $(( (c1 - c0) / (b - a + 1) ))
}
bw() { # target -> MiB/s
	on cli wrk -t 2 -c 16 -d ${DUR}s http://$1/1m | awk '/Transfer\/sec/ { v=$2; if (v ~ /GB/) { sub("GB","",v); v*=1024 } else if (v ~ /KB/) { sub("KB","",v); v/=1024 } else sub("MB","",v); print v }'
}

declare -A R
for r in $(seq $ROUNDS); do
	for path in direct xdp proxy; do
		case $path in direct) t=$RS ;; xdp) t=$VIPX ;; proxy) t=$VIPP ;; esac
		read -r pps cpu < <(udp $path $t)
		mib=$(bw $t)
		R[$path-pps]+="$pps " R[$path-bw]+="$mib " R[$path-cpu]+="$cpu "
		echo "# round $r $path: $pps pps ($cpu ns of director CPU per packet), $mib MiB/s" >&2
	done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR]=$1 } END { print a[int((NR+1)/2)] }'; }
declare -A M
for k in "${!R[@]}"; do M[$k]=$(echo "${R[$k]}" | median); done

echo
echo "medians of $ROUNDS rounds, ${DUR}s each"
printf "%-28s %12s %12s %12s\n" "" direct xdp proxy
printf "%-28s %12s %12s %12s\n" "UDP 64 B, 256 flows, pps" ${M[direct-pps]} ${M[xdp-pps]} ${M[proxy-pps]}
printf "%-28s %12s %12s %12s\n" "TCP 1 MiB (wrk), MiB/s" ${M[direct-bw]} ${M[xdp-bw]} ${M[proxy-bw]}
printf "%-28s %12s %12s %12s\n" "UDP director ns/packet" - ${M[xdp-cpu]} ${M[proxy-cpu]}
awk -v dp=${M[direct-pps]} -v xp=${M[xdp-pps]} -v pp=${M[proxy-pps]} -v db=${M[direct-bw]} -v xb=${M[xdp-bw]} -v pb=${M[proxy-bw]} -v xc=${M[xdp-cpu]} -v pc=${M[proxy-cpu]} 'BEGIN {
	printf "ratios: pps xdp/direct %.2fx, xdp/proxy %.2fx; bandwidth xdp/direct %.2fx, xdp/proxy %.2fx; director CPU per UDP packet proxy/xdp %.1fx\n", xp/dp, xp/pp, xb/db, xb/pb, (xc > 0 ? pc/xc : 0) }'
on dir "$TMP/vipctl" --socket $TMP/x.sock list -n --stats
