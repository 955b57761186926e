# bench/lib.sh: the lab the shell benchmarks (bench/*/run.sh) share, sourced
# after their option parsing. A lab is network namespaces named $P-HOST,
# each with an eth0 cabled by a veth to port $P-pN of bridge br0 in
# namespace $P-br (N counts hosts from 1 in the order they are made);
# addresses come from 198.18.0.0/15. Everything it makes is removed on exit.

# bench_lab PREFIX NAME TOOL...: checks for root and the tools, then sets
# ROOT (the repository), P (PREFIX and the pid: the namespaces' prefix),
# TMP (a directory nginx's workers, running as nobody, can read) and PIDS
# (what to kill on exit; append to it), and makes the bridge.
bench_lab() {
	local prefix=$1 name=$2
	shift 2
	[ "$(id -u)" = 0 ] || { echo "$0: needs root (network namespaces)" >&2; exit 1; }
	for p in "$@"; do
		command -v "$p" >/dev/null || { echo "$0: $p not installed" >&2; exit 1; }
	done
	ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
	P=$prefix$$
	TMP=$(mktemp -d /tmp/vipd-bench-$name.XXXXXX)
	chmod 755 "$TMP"
	PIDS=()
	BENCH_HOSTS=(br)
	BENCH_PORTS=0
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
	echo "# lab $P" >&2
	ip netns add $P-br
	ip -n $P-br link set lo up
	ip -n $P-br link add br0 type bridge
	ip -n $P-br link set br0 type bridge forward_delay 0
	ip -n $P-br link set br0 up
}

# bench_cleanup_more is called on exit, before TMP is removed: a script redefines it to
# undo what the lab does not know of (a mount, say).
bench_cleanup_more() { :; }

bench_cleanup() {
	set +e
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
	sleep 0.5
	for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null; done
	for h in "${BENCH_HOSTS[@]}"; do
		for pid in $(ip netns pids $P-$h 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
		ip netns del $P-$h 2>/dev/null
	done
	bench_cleanup_more
	rm -rf "$TMP"
}

# on HOST CMD...: runs CMD in HOST.
on() { local h=$1; shift; ip netns exec $P-$h "$@"; }

# spawn HOST CMD...: starts CMD in HOST in the background; $! is its pid
# (ip netns exec execs the program).
spawn() { local h=$1; shift; ip netns exec $P-$h "$@" & }

# host NAME ADDR...: a host on the bridge with the addresses on its eth0.
# At thousands of connections a second every host runs through its
# ephemeral ports within the 60 s of TIME_WAIT: all of them get the usual
# tuning so that no target suffers from the rounds before it.
host() {
	local h=$1; shift
	BENCH_PORTS=$((BENCH_PORTS + 1))
	local port=$P-p$BENCH_PORTS
	BENCH_HOSTS+=("$h")
	ip netns add $P-$h
	ip -n $P-$h link set lo up
	ip netns exec $P-$h sysctl -qw net.ipv4.ip_local_port_range="1024 65535" net.ipv4.tcp_tw_reuse=1
	ip link add $P-${h}x type veth peer name $port
	ip link set $P-${h}x netns $P-$h
	ip link set $port netns $P-br
	ip -n $P-$h link set $P-${h}x name eth0
	for a in "$@"; do ip -n $P-$h addr add "$a" dev eth0; done
	ip -n $P-$h link set eth0 up
	ip -n $P-br link set $port master br0
	ip -n $P-br link set $port up
}
