# Shared by scripts/test and scripts/demo: install what is missing.
# shellcheck shell=bash

GO_VERSION=${GO_VERSION:-1.26.8}

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# ensure_packages installs the Debian packages listed in scripts/packages.txt
# (or given as arguments) that are not installed yet. It needs root; without
# root it only warns.
ensure_packages() {
	local want=() missing=() p
	if [ $# -gt 0 ]; then
		want=("$@")
	else
		mapfile -t want < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$(dirname "${BASH_SOURCE[0]}")/packages.txt" | awk '{print $1}')
	fi
	for p in "${want[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" != 0 ]; then
		log "not root: cannot install ${missing[*]}; tests that need them will skip"
		return 0
	fi
	log "apt-get install ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq </dev/null
	apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null
}

# ensure_go puts a Go toolchain on PATH: the one installed, or the official
# toolchain module fetched from the Go module proxy into ~/.cache/vipd.
ensure_go() {
	export PATH=/usr/local/go/bin:$HOME/go/bin:$PATH
	if command -v go >/dev/null 2>&1; then
		return 0
	fi
	local dir="$HOME/.cache/vipd/go$GO_VERSION"
	if [ ! -x "$dir/go/bin/go" ]; then
		log "fetching Go $GO_VERSION from the module proxy"
		mkdir -p "$dir"
		local zip="$dir/toolchain.zip"
		curl -fsSL -o "$zip" "https://proxy.golang.org/golang.org/toolchain/@v/v0.0.1-go$GO_VERSION.linux-amd64.zip"
		(cd "$dir" && unzip -q toolchain.zip && rm toolchain.zip)
		# The module zip holds golang.org/toolchain@.../ as its top folder.
		mv "$dir"/golang.org/toolchain@*/ "$dir/go"
		rm -rf "$dir/golang.org"
		chmod +x "$dir"/go/bin/* "$dir"/go/pkg/tool/*/* 2>/dev/null || true
	fi
	export PATH=$dir/go/bin:$PATH
}
