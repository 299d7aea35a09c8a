#!/bin/sh
# install-deps.sh PKG... — installs the Debian packages that are not yet
# installed, running apt-get update once, and only when something is missing.
set -eu
missing=""
# provided P: an installed package provides P (nodesource's nodejs
# provides npm, and Debian's npm cannot be installed beside it).
provided() {
	dpkg-query -W -f='${db:Status-Abbrev}|${Provides}\n' 2>/dev/null | awk -F'|' -v p="$1" '
		$1 ~ /^ii/ { n = split($2, a, /, */); for (i = 1; i <= n; i++) { sub(/ .*/, "", a[i]); if (a[i] == p) found = 1 } }
		END { exit !found }'
}
for p in "$@"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" && ! provided "$p"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "skiff needs these Debian packages:$missing — run as root, or install them with: sudo apt-get install$missing" >&2
	exit 1
fi
echo "Installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
