#!/bin/sh
# Runs every cmocka unit-test program given as argument and prints one
# summary line. Fails if any program fails.
passed=0
failed=0
for t in "$@"; do
	if "$t"; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		echo "FAILED: $t" >&2
	fi
done
echo "unit: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
