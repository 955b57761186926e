#!/usr/bin/env bash
# bench/proxy/run.sh: vipd's proxy data plane against HAProxy `mode tcp` and
# against a direct connection, measured with wrk in the same run.
#
# It builds a lab of network namespaces (client, director, two nginx real
# servers on a bridge, addresses in 198.18.0.0/24), starts HAProxy (VIP
# port 80) and vipd's proxy (VIP port 81) side by side on the director,
# and runs interleaved rounds of each test against direct (rs1 port 80),
# HAProxy and vipd; it prints the median of each figure and the ratios.
#
#   sudo bench/proxy/run.sh [-r ROUNDS] [-d SECONDS] [-c CONNS] [-i IDLE] [-t TESTS] [--vipd BINARY]
#
# -r  rounds (default 5), -d  seconds per wrk run (default 5),
# -c  wrk connections (default 64), -i  idle connections for the memory
#     row (default 6000: the file-descriptor hard limit here is 20000 and
#     HAProxy with splice needs 2.5 descriptors per maxconn, so its maxconn
#     is 7900; the figure is scaled to 10k; 0 skips the row), -t  the wrk
#     tests to run (default "keepalive close 1mib"), --vipd run
#     `BINARY -n -l -f CONF --dataplane proxy` (the daemon with a generated
#     keepalived.conf) instead of bench/proxy/proxyrun, --hold  build the
#     lab, start everything and wait (for investigations), --base BINARY
#     also run BINARY (a proxyrun built from another commit) on VIP port 82
#     as target "base", for before/after figures in the same run.
#
# PROXYRUN_FLAGS in the environment adds flags to proxyrun (e.g.
# "-cpuprofile /tmp/cpu.prof"), BASE_FLAGS to --base's. Needs root, ip, nginx, haproxy, wrk, go. Everything it creates is removed
# on exit.
set -euo pipefail

ROUNDS=5 DUR=5 CONNS=64 IDLE=6000 VIPD="" TESTS="keepalive close 1mib" HOLD="" BASE=""
while [ $# -gt 0 ]; do
	case "$1" in
	-r) ROUNDS=$2; shift 2 ;;
	-d) DUR=$2; shift 2 ;;
	-c) CONNS=$2; shift 2 ;;
	-i) IDLE=$2; shift 2 ;;
	--vipd) VIPD=$2; shift 2 ;;
	-t) TESTS=$2; shift 2 ;;
	--hold) HOLD=1; shift ;;
	--base) BASE=$(realpath "$2"); shift 2 ;;
	*) echo "usage: $0 [-r ROUNDS] [-d SECONDS] [-c CONNS] [-i IDLE] [-t 'keepalive close 1mib'] [--vipd BINARY]" >&2; exit 2 ;;
	esac
done
. "$(dirname "$0")/../lib.sh"
bench_lab vbp proxy ip nginx haproxy wrk go
VIP=198.18.0.100
RS1=198.18.0.21
RS2=198.18.0.22

echo "# building" >&2
(cd "$ROOT" && go build -o "$TMP/proxyrun" ./bench/proxy/proxyrun && go build -o "$TMP/idleconns" ./bench/proxy/idleconns)

host cli 198.18.0.10/24
host dir 198.18.0.11/24 $VIP/24
host rs1 $RS1/24
host rs2 $RS2/24

# Real servers: nginx with a page naming the server and a 1 MiB file.
for r in rs1 rs2; do
	d=$TMP/$r
	mkdir -p $d/www $d/tmp
	echo "$r" >$d/www/index.html
	head -c 1048576 /dev/urandom >$d/www/1m
	addr=$RS1; [ $r = rs2 ] && addr=$RS2
	cat >$d/nginx.conf <<EOF
worker_processes auto;
worker_rlimit_nofile 20000;
pid $d/nginx.pid;
error_log $d/error.log;
daemon off;
events { worker_connections 20000; }
http {
	access_log off;
	keepalive_requests 10000000;
	keepalive_timeout 300s;
	client_header_timeout 300s;
	client_body_temp_path $d/tmp/body;
	proxy_temp_path $d/tmp/proxy;
	fastcgi_temp_path $d/tmp/fastcgi;
	uwsgi_temp_path $d/tmp/uwsgi;
	scgi_temp_path $d/tmp/scgi;
	sendfile on;
	server { listen $addr:80 backlog=65535; root $d/www; }
}
EOF
	spawn $r nginx -c $d/nginx.conf -p $d >$d/out.log 2>&1
	PIDS+=($!)
done

# HAProxy at its best for L4: splice, one thread per core, maxconn below
# the descriptor limit.
cat >$TMP/haproxy.cfg <<EOF
global
	nbthread $(nproc)
	maxconn 7900
	tune.maxaccept 64
defaults
	mode tcp
	option splice-auto
	timeout connect 5s
	timeout client 300s
	timeout server 300s
listen bench
	bind $VIP:80
	balance roundrobin
	server rs1 $RS1:80
	server rs2 $RS2:80
EOF

start_haproxy() {
	spawn dir haproxy -db -f $TMP/haproxy.cfg >$TMP/haproxy.log 2>&1
	HAPROXY_PID=$!
	PIDS+=($HAPROXY_PID)
}

cat >$TMP/keepalived.conf <<EOF
virtual_server $VIP 81 {
	lb_algo rr
	lb_kind NAT
	protocol TCP
	real_server $RS1 80 {
		weight 1
	}
	real_server $RS2 80 {
		weight 1
	}
}
EOF

start_vipd() {
	if [ -n "$VIPD" ]; then
		spawn dir "$VIPD" -n -l -f $TMP/keepalived.conf --dataplane proxy -p $TMP/vipd.pid --control $TMP/vipd.sock >$TMP/vipd.log 2>&1
	else
		spawn dir $TMP/proxyrun -vip $VIP:81 -rs $RS1:80,$RS2:80 -sched rr ${PROXYRUN_FLAGS:-} >$TMP/vipd.log 2>&1
	fi
	VIPD_PID=$!
	PIDS+=($VIPD_PID)
}

wait_port() { # host addr port
	for _ in $(seq 200); do
		if on $1 bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null; then return 0; fi
		sleep 0.05
	done
	echo "$0: nothing listening on $2:$3 in $1" >&2
	cat $TMP/*.log >&2
	exit 1
}

start_base() {
	spawn dir "$BASE" -vip $VIP:82 -rs $RS1:80,$RS2:80 -sched rr ${BASE_FLAGS:-} >$TMP/base.log 2>&1
	BASE_PID=$!
	PIDS+=($BASE_PID)
}

start_haproxy
start_vipd
[ -z "$BASE" ] || { start_base; wait_port cli $VIP 82; }
wait_port rs1 $RS1 80
wait_port rs2 $RS2 80
wait_port cli $VIP 80
wait_port cli $VIP 81

# Sanity: each target answers, and the balancers alternate.
for t in $RS1:80 $VIP:80 $VIP:81; do
	a=$(on cli curl -s http://$t/) b=$(on cli curl -s http://$t/)
	echo "# $t answers: $a $b" >&2
	case "$a$b" in rs1rs2 | rs2rs1 | rs1rs1) ;; *) echo "$0: unexpected answers from $t" >&2; exit 1 ;; esac
done

if [ -n "$HOLD" ]; then
	# For investigations: keep the lab up until interrupted.
	echo "# holding: namespaces $P-{cli,dir,rs1,rs2}, haproxy pid $HAPROXY_PID ($VIP:80), vipd pid $VIPD_PID ($VIP:81); ^C or kill $$ to end" >&2
	while :; do sleep 1; done
fi

declare -A URL=([direct]=http://$RS1:80 [haproxy]=http://$VIP:80 [vipd]=http://$VIP:81 [base]=http://$VIP:82)
TARGETS=(direct haproxy vipd)
[ -z "$BASE" ] || TARGETS+=(base)
RES=$TMP/results.tsv
: >$RES

# to_ms VALUE: wrk latency (us, ms, s) in milliseconds.
to_ms() { awk -v v="$1" 'BEGIN { u = v; sub(/[0-9.]+/, "", u); x = v + 0;
	if (u == "us") x /= 1000; else if (u == "s") x *= 1000; else if (u == "m") x *= 60000; printf "%.3f", x }'; }
# to_mib VALUE: wrk transfer (B, KB, MB, GB; binary units) in MiB.
to_mib() { awk -v v="$1" 'BEGIN { u = v; sub(/[0-9.]+/, "", u); x = v + 0;
	if (u == "B") x /= 1048576; else if (u == "KB") x /= 1024; else if (u == "GB") x *= 1024; printf "%.1f", x }'; }

# cpu_ticks PID: user+system time of a process, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' /proc/$1/stat; }
HZ=$(getconf CLK_TCK)

run_wrk() { # test target round args...
	local test=$1 target=$2 round=$3; shift 3
	local out pid="" t0=0
	case $target in haproxy) pid=$HAPROXY_PID ;; vipd) pid=$VIPD_PID ;; base) pid=$BASE_PID ;; esac
	[ -n "$pid" ] && t0=$(cpu_ticks $pid)
	out=$(on cli wrk -t2 -c$CONNS -d${DUR}s --latency "$@" 2>&1)
	if [ -n "$pid" ]; then
		# The balancer's own CPU time per request: robust against other
		# load on the machine, unlike the rates.
		local t1 reqs
		t1=$(cpu_ticks $pid)
		reqs=$(awk '/requests in/ { print $1 }' <<<"$out")
		awk -v a=$t0 -v b=$t1 -v r="$reqs" -v hz=$HZ -v k="$test	$target	$round" \
			'BEGIN { if (r > 0) printf "%s\tcpu\t%.2f\n", k, (b - a) / hz * 1e6 / r }' >>$RES
	fi
	local rps tr p99 errs
	rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
	tr=$(awk '/^Transfer\/sec:/ { print $2 }' <<<"$out")
	p99=$(awk '$1 == "99%" { print $2 }' <<<"$out")
	errs=$(awk '/Socket errors:/ { gsub(",", ""); s += $4 + $6 + $8 + $10 } /Non-2xx/ { s += $NF } END { print s + 0 }' <<<"$out")
	printf '%s\t%s\t%s\trps\t%s\n' "$test" "$target" "$round" "$rps" >>$RES
	printf '%s\t%s\t%s\tmib\t%s\n' "$test" "$target" "$round" "$(to_mib "$tr")" >>$RES
	printf '%s\t%s\t%s\tp99\t%s\n' "$test" "$target" "$round" "$(to_ms "$p99")" >>$RES
	printf '%s\t%s\t%s\terrors\t%s\n' "$test" "$target" "$round" "${errs:-0}" >>$RES
	echo "# round $round $test $target: $rps req/s, $tr/s, p99 $p99, errors ${errs:-0} (load $(cut -d' ' -f1 /proc/loadavg))" >&2
}

for round in $(seq $ROUNDS); do
	# Rotate the order each round: no target always runs first or last.
	k=$(((round - 1) % ${#TARGETS[@]}))
	order=("${TARGETS[@]:$k}" "${TARGETS[@]:0:$k}")
	for test in $TESTS; do
		for target in "${order[@]}"; do
			case $test in
			keepalive) run_wrk keepalive $target $round ${URL[$target]}/ ;;
			close) run_wrk close $target $round -H "Connection: close" ${URL[$target]}/ ;;
			1mib) run_wrk 1mib $target $round -c8 ${URL[$target]}/1m ;;
			*) echo "$0: unknown test $test" >&2; exit 2 ;;
			esac
		done
	done
done

# Memory: a fresh balancer, IDLE idle connections through it, RSS growth.
rss_kib() { awk '/^VmRSS:/ { print $2 }' /proc/$1/status; }
idle_row() { # target pid port
	local base after
	sleep 1
	base=$(rss_kib $2)
	spawn cli $TMP/idleconns -target $VIP:$3 -n $IDLE >$TMP/idle.out 2>&1
	local ipid=$!
	PIDS+=($ipid)
	for _ in $(seq 600); do grep -q "open" $TMP/idle.out && break; sleep 0.1; done
	sleep 2
	after=$(rss_kib $2)
	echo "# idle $1: $(cat $TMP/idle.out), RSS $base -> $after KiB" >&2
	kill $ipid; wait $ipid 2>/dev/null || true
	awk -v b=$base -v a=$after -v n=$IDLE -v t=$1 'BEGIN { printf "idle\t%s\t1\trss10k\t%.1f\n", t, (a - b) / 1024 * 10000 / n }' >>$RES
}
for round in $([ "$IDLE" -gt 0 ] && echo 1 2); do
	kill $HAPROXY_PID $VIPD_PID; wait $HAPROXY_PID $VIPD_PID 2>/dev/null || true
	start_haproxy; start_vipd
	wait_port cli $VIP 80; wait_port cli $VIP 81
	idle_row haproxy $HAPROXY_PID 80
	idle_row vipd $VIPD_PID 81
done

# Summary: medians, and ratios vipd/HAProxy and vipd/direct. For latency
# and memory lower is better, so their "vipd vs" columns are HAProxy/vipd
# (above 1.0 = vipd better), like the throughput rows.
echo
echo "machine: $(nproc) cores, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg); $ROUNDS rounds x ${DUR}s, wrk -t2 -c$CONNS (1 MiB: -c8); medians; CPU = the balancer's own user+system time"
echo
awk -F'\t' -v base="$BASE" '
function median(key,   n, i, j, t, a) {
	n = split(vals[key], a, " ")
	for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
	if (n == 0) return ""
	return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{ k = $1 SUBSEP $2 SUBSEP $4; vals[k] = vals[k] " " $5 }
END {
	rows[1] = "keepalive rps requests/s, keep-alive (higher is better) 0"
	rows[2] = "close rps new connections/s, Connection: close (higher is better) 0"
	rows[3] = "1mib mib 1 MiB responses, MiB/s (higher is better) 0"
	rows[4] = "keepalive p99 p99 latency ms, keep-alive (lower is better) 1"
	rows[5] = "close p99 p99 latency ms, Connection: close (lower is better) 1"
	rows[6] = "idle rss10k RSS MiB per 10k idle connections (lower is better) 1"
	rows[7] = "keepalive cpu CPU us per request, keep-alive (lower is better) 1"
	rows[8] = "close cpu CPU us per connection, Connection: close (lower is better) 1"
	rows[9] = "1mib cpu CPU us per 1 MiB response (lower is better) 1"
	hb = base ? sprintf(" %12s | %14s |", "base", "vipd vs base") : ""
	sb = base ? "--------------|----------------|" : ""
	printf "| %-60s | %10s | %10s | %10s | %13s | %13s |%s\n", "figure", "direct", "HAProxy", "vipd", "vipd vs HAProxy", "vipd vs direct", hb
	printf "|%s|%s|%s|%s|%s|%s|%s\n", "--------------------------------------------------------------", "------------", "------------", "------------", "-----------------", "----------------", sb
	for (r = 1; r <= 9; r++) {
		n = split(rows[r], f, " ")
		test = f[1]; fig = f[2]; lower = f[n]
		label = ""; for (i = 3; i < n; i++) label = label (i > 3 ? " " : "") f[i]
		d = median(test SUBSEP "direct" SUBSEP fig)
		h = median(test SUBSEP "haproxy" SUBSEP fig)
		v = median(test SUBSEP "vipd" SUBSEP fig)
		rh = ""; rd = ""
		if (h != "" && v != "" && v + 0 > 0 && h + 0 > 0) rh = sprintf("%.2fx", lower ? h / v : v / h)
		if (d != "" && v != "" && v + 0 > 0 && d + 0 > 0) rd = sprintf("%.2fx", lower ? d / v : v / d)
		if (h == "" && v == "") continue
		xb = ""
		if (base) {
			b = median(test SUBSEP "base" SUBSEP fig); rb = ""
			if (b != "" && v != "" && v + 0 > 0 && b + 0 > 0) rb = sprintf("%.2fx", lower ? b / v : v / b)
			xb = sprintf(" %12s | %14s |", b == "" ? "-" : b, rb)
		}
		printf "| %-60s | %10s | %10s | %10s | %15s | %14s |%s\n", label, d == "" ? "-" : d, h, v, rh, rd, xb
	}
	e = 0; for (k in vals) { split(k, p, SUBSEP); if (p[3] == "errors") { n = split(vals[k], a, " "); for (i = 1; i <= n; i++) e += a[i] } }
	printf "\nwrk socket errors and non-2xx responses, all runs: %d\n", e
}' $RES
