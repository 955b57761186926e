// Package e2e holds vipd's end-to-end tests: real vipd binaries (and real
// keepalived, nginx, haproxy) in network namespaces built by internal/lab.
// They need root; without it they skip, except under CI (any non-empty
// value), where they fail.
package e2e
