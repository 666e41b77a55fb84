#!/usr/bin/env bash
# Integration and interop tests of ewpd / ewpctl (Node 20 built-in runner).
#
#   tests/integration/run.sh                 every *.test.mjs
#   tests/integration/run.sh echo httpsig    only echo.test.mjs, httpsig.test.mjs
#
# Environment: EWPD, EWPCTL (default build/ewpd, build/ewpctl), EWP_SPECS
# (default ../shared/ewp-specs), KEEP_TMP=1 keeps the temp dirs. Browser
# tests: CHROMIUM (default /usr/bin/chromium), EWP_ARTEFACTS (screenshots,
# default build/artefacts/portal).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

if ! command -v node >/dev/null 2>&1; then
	echo "run.sh: node is not installed (Node 20 needed)" >&2
	exit 2
fi
major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$major" -lt 20 ]; then
	echo "run.sh: Node >= 20 needed, found $(node --version)" >&2
	exit 2
fi

if [ ! -d "$here/node_modules/http-signature" ] || [ ! -d "$here/node_modules/playwright-core" ]; then
	(
		cd "$here"
		if [ -f package-lock.json ]; then
			npm ci --no-audit --no-fund --loglevel=error >/dev/null
		else
			npm install --no-audit --no-fund --loglevel=error >/dev/null
		fi
	)
fi

cd "$root"
files=()
if [ "$#" -gt 0 ]; then
	for a in "$@"; do
		a="${a%.test.mjs}"
		a="${a##*/}"
		files+=("tests/integration/$a.test.mjs")
	done
else
	for f in tests/integration/*.test.mjs; do files+=("$f"); done
fi

exec node --test --test-concurrency=1 --test-reporter=tap "${files[@]}"
