#!/bin/bash
# base-images.sh [--tars-only] [NAME...] — makes Debian 12 (bookworm) base
# images on this machine, where no registry can be reached: mmdebstrap
# builds each root filesystem from Debian's archive (the tars are cached
# under ${SKIFF_CACHE:-/var/cache/skiff}/base/) and `skiff image import
# --rootfs` makes it an image:
#
#   debian             localhost/debian:bookworm             minbase
#   debian-golang      localhost/debian-golang:bookworm      + golang-go ca-certificates
#   debian-postgresql  localhost/debian-postgresql:bookworm  + postgresql-15
#
# Without NAMEs it makes all three. Images already present are skipped, and
# so are cached tars. --tars-only makes the tars and imports nothing.
# SKIFF names the skiff binary (default: bin/skiff, else skiff on PATH);
# SKIFF_SOCKET, when set, the daemon's socket.
set -euo pipefail
CACHE=${SKIFF_CACHE:-/var/cache/skiff}/base
cd "$(dirname "$0")/.."
if [ -z "${SKIFF:-}" ]; then
	if [ -x bin/skiff ]; then SKIFF=bin/skiff; else SKIFF=skiff; fi
fi
SKIFF_ARGS=()
[ -n "${SKIFF_SOCKET:-}" ] && SKIFF_ARGS=(--socket "$SKIFF_SOCKET")

tars_only=
if [ "${1:-}" = --tars-only ]; then
	tars_only=1
	shift
fi
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(debian debian-golang debian-postgresql)

# Documentation, manuals and translations are left out to keep the images
# small; PostgreSQL's LLVM (only for JIT compilation) too.
slim='rm -rf "$1"/usr/share/doc "$1"/usr/share/man "$1"/usr/share/locale "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/*_Packages'
include() {
	case $1 in
	debian) echo "" ;;
	debian-golang) echo "golang-go,ca-certificates" ;;
	debian-postgresql) echo "postgresql-15" ;;
	*) return 1 ;;
	esac
}
for n in "${names[@]}"; do
	if ! include "$n" >/dev/null; then
		echo "base-images: unknown image $n: choose among debian, debian-golang, debian-postgresql" >&2
		exit 2
	fi
done

for n in "${names[@]}"; do
	ref=localhost/$n:bookworm
	tar=$CACHE/$n-bookworm.tar
	if [ -z "$tars_only" ] && "$SKIFF" "${SKIFF_ARGS[@]}" image inspect "$ref" >/dev/null 2>&1; then
		echo "$ref is present"
		continue
	fi
	if [ ! -f "$tar" ]; then
		mkdir -p "$CACHE"
		hook=$slim
		[ "$n" = debian-postgresql ] && hook="$hook \"\$1\"/usr/lib/*/libLLVM* \"\$1\"/usr/lib/*/libz3*"
		inc=$(include "$n")
		echo "making $tar with mmdebstrap (a few minutes)"
		partial="$CACHE/.$n-bookworm.partial.tar"
		mmdebstrap --quiet --variant=minbase --format=tar ${inc:+--include="$inc"} \
			--customize-hook="$hook" bookworm "$partial"
		mv "$partial" "$tar"
	fi
	[ -n "$tars_only" ] && continue
	"$SKIFF" "${SKIFF_ARGS[@]}" image import --rootfs "$tar" "$ref" \
		--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'CMD ["bash"]' --message "mmdebstrap --variant=minbase${inc:+ --include=$inc} bookworm"
done
