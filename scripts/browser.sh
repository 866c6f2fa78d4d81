#!/bin/sh
# The benchmark's browser. It notes the moment it was started, then opens the URL and clicks Allow
# in the background and returns at once, as a real browser's launcher does (webbrowser waits for it).
date +%s%N >> "$BENCH_RECORD"
"$BENCH_PYTHON" "$BENCH_CLICK" "$1" >/dev/null 2>&1 &
