#!/usr/bin/env bash
# bench/proxy/udp.sh: vipd's proxy data plane for UDP against nginx's
# stream module (libnginx-mod-stream, `listen ... udp reuseport`) and
# against a direct path, many flows of request/response, in the same run.
#
# Lab (network namespaces, 198.18.0.0/24): a client, a director with the
# VIP running nginx stream (VIP port 80) and vipd's proxy (VIP port 81),
# two real servers running `udpload -serve` (a UDP echo on port 7, a
# stand-in for a real UDP service: the same for every target). Each
# round runs bench/proxy/udpload against direct (rs1:7), nginx and vipd,
# in rotated order; it prints medians and the ratios vipd/nginx and
# vipd/direct, with the balancer's CPU per request.
#
#   sudo bench/proxy/udp.sh [-r ROUNDS] [-d SECONDS] [-f FLOWS] [--vipd BINARY] [--base BINARY]
#
# -r rounds (default 5), -d seconds per run (default 5), -f concurrent
# flows (default 1000), --vipd run `BINARY -n -l -f CONF --dataplane proxy`
# (the daemon on a generated keepalived.conf) instead of proxyrun, --base
# also run BINARY (a proxyrun built from another commit) on VIP port 82 as
# target "base", for before/after figures in the same run.
# PROXYRUN_FLAGS adds flags to proxyrun (e.g. "-cpuprofile /tmp/u.prof").
# Needs root, ip, nginx with the stream module, go. Everything it creates
# is removed on exit.
set -euo pipefail

ROUNDS=5 DUR=5 FLOWS=1000 VIPD="" BASE=""
while [ $# -gt 0 ]; do
	case "$1" in
	-r) ROUNDS=$2; shift 2 ;;
	-d) DUR=$2; shift 2 ;;
	-f) FLOWS=$2; shift 2 ;;
	--vipd) VIPD=$2; shift 2 ;;
	--base) BASE=$(realpath "$2"); shift 2 ;;
	*) echo "usage: $0 [-r ROUNDS] [-d SECONDS] [-f FLOWS] [--vipd BINARY] [--base BINARY]" >&2; exit 2 ;;
	esac
done
. "$(dirname "$0")/../lib.sh"
bench_lab vbu proxyudp ip nginx go
STREAM=/usr/lib/nginx/modules/ngx_stream_module.so
[ -f $STREAM ] || { echo "$0: $STREAM missing (apt-get install libnginx-mod-stream)" >&2; exit 1; }
VIP=198.18.0.100
RS1=198.18.0.21
RS2=198.18.0.22

echo "# building" >&2
(cd "$ROOT" && go build -o "$TMP/proxyrun" ./bench/proxy/proxyrun && go build -o "$TMP/udpload" ./bench/proxy/udpload)

host cli 198.18.0.10/24
host dir 198.18.0.11/24 $VIP/24
host rs1 $RS1/24
host rs2 $RS2/24

spawn rs1 $TMP/udpload -serve $RS1:7 >$TMP/rs1.log 2>&1
PIDS+=($!)
spawn rs2 $TMP/udpload -serve $RS2:7 >$TMP/rs2.log 2>&1
PIDS+=($!)

# nginx stream at its best for UDP: a worker per core, reuseport (each
# worker its own socket; a client's datagrams stay with one worker and
# its session), sessions kept like vipd's flows (no proxy_responses), a
# 4 MiB receive buffer as vipd's VIP sockets and the echo servers ask for
# (the default ~200 KiB drops bursts of 1,000 flows).
mkdir -p $TMP/nginx
cat >$TMP/nginx/nginx.conf <<END
load_module $STREAM;
worker_processes auto;
worker_rlimit_nofile 20000;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log;
daemon off;
events { worker_connections 20000; }
stream {
	upstream be {
		server $RS1:7;
		server $RS2:7;
	}
	server {
		listen $VIP:80 udp reuseport rcvbuf=4m;
		proxy_pass be;
		proxy_timeout 60s;
	}
}
END
spawn dir nginx -c $TMP/nginx/nginx.conf -p $TMP/nginx >$TMP/nginx/out.log 2>&1
NGINX_PID=$!
PIDS+=($NGINX_PID)

cat >$TMP/keepalived.conf <<END
virtual_server $VIP 81 {
	lb_algo rr
	lb_kind NAT
	protocol UDP
	real_server $RS1 7 {
		weight 1
	}
	real_server $RS2 7 {
		weight 1
	}
}
END
if [ -n "$VIPD" ]; then
	spawn dir "$VIPD" -n -l -f $TMP/keepalived.conf --dataplane proxy -p $TMP/vipd.pid --control $TMP/vipd.sock >$TMP/vipd.log 2>&1
else
	spawn dir $TMP/proxyrun -proto udp -vip $VIP:81 -rs $RS1:7,$RS2:7 -sched rr ${PROXYRUN_FLAGS:-} >$TMP/vipd.log 2>&1
fi
VIPD_PID=$!
PIDS+=($VIPD_PID)
if [ -n "$BASE" ]; then
	spawn dir "$BASE" -proto udp -vip $VIP:82 -rs $RS1:7,$RS2:7 -sched rr >$TMP/base.log 2>&1
	BASE_PID=$!
	PIDS+=($BASE_PID)
fi

declare -A ADDR=([direct]=$RS1:7 [nginx]=$VIP:80 [vipd]=$VIP:81 [base]=$VIP:82)
TARGETS=(direct nginx vipd)
[ -z "$BASE" ] || TARGETS+=(base)

# Every target answers before the rounds (a short run with a few flows).
for t in "${TARGETS[@]}"; do
	ok=""
	for _ in $(seq 50); do
		out=$(on cli $TMP/udpload -target ${ADDR[$t]} -flows 4 -d 200ms -timeout 100ms 2>&1 || true)
		if awk '{ exit !($2 > 0) }' <<<"$out"; then ok=1; break; fi
		sleep 0.1
	done
	[ -n "$ok" ] || { echo "$0: $t (${ADDR[$t]}) does not answer: $out" >&2; cat $TMP/*.log $TMP/nginx/*.log >&2; exit 1; }
	echo "# $t answers" >&2
done

cpu_ticks() { awk '{ print $14 + $15 }' /proc/$1/stat; }
HZ=$(getconf CLK_TCK)
RES=$TMP/results.tsv
: >$RES
for round in $(seq $ROUNDS); do
	# Rotate the order each round: no target always runs first or last.
	k=$(((round - 1) % ${#TARGETS[@]}))
	order=("${TARGETS[@]:$k}" "${TARGETS[@]:0:$k}")
	for t in "${order[@]}"; do
		pids=""
		case $t in nginx) pids=$(pgrep -P $NGINX_PID | tr '\n' ' ') ;; vipd) pids=$VIPD_PID ;; base) pids=$BASE_PID ;; esac
		t0=0; for p in $pids; do t0=$((t0 + $(cpu_ticks $p))); done
		out=$(on cli $TMP/udpload -target ${ADDR[$t]} -flows $FLOWS -d ${DUR}s)
		t1=0; for p in $pids; do t1=$((t1 + $(cpu_ticks $p))); done
		echo "# round $round $t: $out (load $(cut -d' ' -f1 /proc/loadavg))" >&2
		awk -v t=$t -v r=$round -v a=$t0 -v b=$t1 -v hz=$HZ -v p="$pids" '{
			printf "%s\t%s\trps\t%s\n%s\t%s\tp99\t%s\n%s\t%s\tlost\t%s\n", t, r, $4, t, r, $8, t, r, $10
			if (p != "" && $2 > 0) printf "%s\t%s\tcpu\t%.2f\n", t, r, (b - a) / hz * 1e6 / $2
		}' <<<"$out" >>$RES
	done
done

echo
echo "machine: $(nproc) cores, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg); $ROUNDS rounds x ${DUR}s, $FLOWS flows of 64-byte request/response; medians; CPU = the balancer's own user+system time (nginx: its workers)"
echo
awk -F'\t' -v base="$BASE" '
function median(key,   n, i, j, t, a) {
	n = split(vals[key], a, " ")
	for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
	if (n == 0) return ""
	return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{ k = $1 SUBSEP $3; vals[k] = vals[k] " " $4 }
END {
	rows[1] = "rps requests/s (higher is better) 0"
	rows[2] = "p99 p99 latency ms (lower is better) 1"
	rows[3] = "cpu CPU us per request (lower is better) 1"
	rows[4] = "lost requests lost per run (lower is better) 1"
	hb = base ? sprintf(" %10s | %12s |", "base", "vipd vs base") : ""
	sb = base ? "------------|--------------|" : ""
	printf "| %-40s | %10s | %10s | %10s | %13s | %14s |%s\n", "figure", "direct", "nginx", "vipd", "vipd vs nginx", "vipd vs direct", hb
	printf "|%s|%s|%s|%s|%s|%s|%s\n", "------------------------------------------", "------------", "------------", "------------", "---------------", "----------------", sb
	for (r = 1; r <= 4; r++) {
		n = split(rows[r], f, " ")
		fig = f[1]; lower = f[n]
		label = ""; for (i = 2; i < n; i++) label = label (i > 2 ? " " : "") f[i]
		d = median("direct" SUBSEP fig); h = median("nginx" SUBSEP fig); v = median("vipd" SUBSEP fig)
		rh = ""; rd = ""
		if (h != "" && v != "" && v + 0 > 0 && h + 0 > 0) rh = sprintf("%.2fx", lower ? h / v : v / h)
		if (d != "" && v != "" && v + 0 > 0 && d + 0 > 0) rd = sprintf("%.2fx", lower ? d / v : v / d)
		xb = ""
		if (base) {
			b = median("base" SUBSEP fig); rb = ""
			if (b != "" && v != "" && v + 0 > 0 && b + 0 > 0) rb = sprintf("%.2fx", lower ? b / v : v / b)
			xb = sprintf(" %10s | %12s |", b == "" ? "-" : b, rb)
		}
		printf "| %-40s | %10s | %10s | %10s | %13s | %14s |%s\n", label, d == "" ? "-" : d, h == "" ? "-" : h, v, rh, rd, xb
	}
}' $RES
