#!/usr/bin/env bash
# valgrind (memcheck, USE_ZEND_ALLOC=0) over a script calling every method;
# fails on any "definitely lost" block allocated by the extension.
set -euo pipefail
so=$1 dsn=$2 out=$3
USE_ZEND_ALLOC=0 ZEND_DONT_UNLOAD_MODULES=1 valgrind --tool=memcheck --leak-check=full \
    --num-callers=40 --log-file="$out" \
    php -n -d extension="$so" "$(dirname "$0")/every-method.php" "$dsn" >/dev/null
definite=$(grep -E "definitely lost:" "$out" | tail -1 | sed "s/^==[0-9]*== *//")
# A definitely-lost record is ours when its allocation stack passes through the extension.
ours=$(awk '/are definitely lost in loss record/{rec=1; hit=0; next} rec && /libredis_lock/ {hit=1} rec && /^==[0-9]+== $/ {if (hit) n++; rec=0} END {print n+0}' "$out")
echo "valgrind: $definite; definitely-lost records from the extension: $ours (log: $out)"
[ "$ours" -eq 0 ]
