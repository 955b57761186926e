#!/usr/bin/env bash
# bench/checks/vm.sh [N] [ROUNDS]: vipd's health checks beside keepalived's
# checker in the same QEMU VM, same run (keepalived's checker needs IPVS,
# which the host kernel lacks). Builds vipd and bench/checks statically,
# boots scripts/run-in-vm with keepalived shipped, and runs
# `checks -vm` there (bench/checks/vm.go): N real servers (default 1000)
# with HTTP_GET at delay_loop 6, a 60 s window per daemon, each round
# measuring both, the order alternating. It prints CPU per check, checks
# on schedule and RSS for each, and the ratios vipd/keepalived.
#
# On a host with other work the guest charges its processes for time its
# vCPUs spent descheduled on the host, and a starved guest misses its
# schedule whatever the daemon does: compare the two daemons of one run,
# and read the host load printed before and after. VIPD_VM_ICOUNT=
# shift=2,sleep=off (QEMU -icount: guest time counts instructions) would
# remove that, but single-threaded TCG did not finish booting in 11 min
# on a host at load 30-40, so it is not the default.
#
# DATAPLANE=proxy runs vipd with its userspace data plane (idle here: no
# traffic reaches the virtual servers) when programming 1,000 IPVS
# destinations does not finish within vipd's 30 s bound in a starved VM.
#
# The guest boots with tsc=reliable so that clock reads stay in the vDSO
# (../shared/labs/checkscale, "The guest clock under TCG": on hpet every
# time.Now is an emulated MMIO read, which penalises Go's runtime).
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-1000}
ROUNDS=${2:-1}
WINDOW=${WINDOW:-60s}
# /var/tmp: the guest mounts a tmpfs over /tmp, which would hide the shipped vipd
tmp=$(mktemp -d /var/tmp/vipd-checkvm.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export CGO_ENABLED=0
go build -trimpath -o "$tmp/vipd" ./cmd/vipd
go build -trimpath -o "$tmp/checks" ./bench/checks
command -v keepalived >/dev/null || { echo "keepalived not installed (Debian keepalived)" >&2; exit 1; }
echo "host load before: $(cat /proc/loadavg)"
VIPD_VM_BINS="ip ipvsadm keepalived" VIPD_VM_FILES="$tmp/vipd" VIPD_VM_APPEND="tsc=reliable" \
	VIPD_VM_ICOUNT=${VIPD_VM_ICOUNT:-} \
	VIPD_VM_MEM=${VIPD_VM_MEM:-2048} VIPD_VM_TIMEOUT=${VIPD_VM_TIMEOUT:-1500} \
	scripts/run-in-vm "$tmp/checks" -vm -servers "$N" -delay 6s -vm-window "$WINDOW" -vm-rounds "$ROUNDS" -vipd "$tmp/vipd" -vm-dataplane "${DATAPLANE:-ipvs}"
echo "host load after: $(cat /proc/loadavg)"
