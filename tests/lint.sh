#!/bin/sh
# make lint: banned unbounded string functions, raw malloc outside
# xmalloc.c, and clang-format conformance of every C file.
set -u
cd "$(dirname "$0")/.."
rc=0
files=$(find gateway tests/unit tests/fuzz bench -name '*.[ch]' 2>/dev/null)

banned='\b(strcpy|strcat|sprintf|vsprintf|gets|strtok|atoi|atol|sscanf)[[:space:]]*\('
if grep -nE "$banned" $files; then
	echo "lint: banned function (use snprintf, buf_*, strtol)" >&2
	rc=1
fi
if grep -nE '\b(malloc|calloc|realloc)[[:space:]]*\(' $(echo "$files" | grep '^gateway/' | grep -v xmalloc.c) |
	grep -v 'OPENSSL_\|xmlFree\|x[a-z]*alloc'; then
	echo "lint: raw allocation outside xmalloc.c (use xmalloc & co.)" >&2
	rc=1
fi
if command -v clang-format >/dev/null 2>&1; then
	for f in $files; do
		clang-format --dry-run -Werror "$f" 2>/dev/null || {
			echo "lint: $f is not clang-formatted (make format)" >&2
			rc=1
		}
	done
fi
[ $rc -eq 0 ] && echo "lint: clean"
exit $rc
