// Package vmtest holds the tests of the ipvs data plane against a real
// kernel IPVS: NAT, DR and TUN traffic end to end in network namespaces,
// scheduler sequences compared with vipd's userspace schedulers, the sync
// daemon across a failover, ownership and reloads, and the ipvsadm
// listings compared byte for byte with internal/ipvsadm.
//
// The tests need a kernel with IPVS and root. This machine's kernel has
// none, so scripts/vmtest runs them in a QEMU VM booting Debian's kernel
// (scripts/run-in-vm as go test -exec); everywhere else they skip. They
// live in one package because every package run through -exec costs a VM
// boot.
package vmtest
