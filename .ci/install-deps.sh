#!/bin/sh
# Installs the Debian packages that ewpd needs to build, run and be tested,
# when they are missing. Safe to run again: it only installs what is absent.
set -eu

need="build-essential pkg-config openssl curl libevent-dev libssl-dev libxml2-dev
libxml2-utils libxmlsec1-dev libcurl4-openssl-dev libpq-dev libcmocka-dev postgresql
clang libclang-rt-14-dev"
[ -n "${EWP_EXTRA_PACKAGES:-}" ] && need="$need $EWP_EXTRA_PACKAGES"

missing=""
for p in $need; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
# Node.js (interop tests) may come from Debian or elsewhere: check the command.
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"

[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "missing Debian packages:$missing" >&2
	echo "install them with: sudo apt-get install$missing" >&2
	exit 1
fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
