#!/usr/bin/env bash
# The chat executable's command line: --help, and a bad routing.yaml that
# stops start-up with exit code 2 and a message naming file, line and fix.
# Usage: chat_cli_test.sh CHAT_BINARY TEST_DIR
set -u
chat=$1 dir=$2
passed=0 failed=0
check() {  # name, condition
  if eval "$2"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $1"; fi
}

help=$("$chat" --help 2>&1); rc=$?
check "--help exits 0" "[ $rc -eq 0 ]"
for flag in --routing --bind --port --threads; do
  check "--help lists $flag" "grep -q -- '$flag' <<<\"\$help\""
done

out=$(timeout 10 "$chat" --routing "$dir/bad_routing.yaml" --port 0 2>&1); rc=$?
check "bad routing.yaml exits 2 (got $rc)" "[ $rc -eq 2 ]"
check "error names file and line" "grep -q 'bad_routing.yaml:3: unknown key .por. in .server.' <<<\"\$out\""
check "error suggests the fix" "grep -q \"did you mean 'port'\" <<<\"\$out\""

out=$(timeout 10 "$chat" --routing "$dir/does-not-exist.yaml" 2>&1); rc=$?
check "missing routing file exits 2" "[ $rc -eq 2 ]"
check "missing file says --routing" "grep -q -- '--routing FILE' <<<\"\$out\""

out=$(timeout 10 "$chat" --port 99999 2>&1); rc=$?
check "out-of-range port is refused" "[ $rc -ne 0 ]"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
