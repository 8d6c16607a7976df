#!/usr/bin/env bash
# Everything CI runs: set-up, the shim's dependency check, the C unit tests
# of the ring and the stack table (also under ThreadSanitizer), the stress
# victims under an ASan+UBSan shim, the shim's CPython offsets against the
# interpreters' headers, the comparison script's own tests, the fuzz corpus
# through the trace reader, the Swift unit and end-to-end tests, and real
# programs and a subset of CPython's regression tests, which must give the
# same results traced as untraced (tools/realprogs).
set -euo pipefail
cd "$(dirname "$0")/.."

tools/setup.sh
tools/check-shim-deps.sh cshim/build/libmemsift.so
make -s -C cshim test test-tsan test-sanitizers test-python-layout
python3 tools/python-compare-test.py
python3 tools/realprogs/test_cpython_tests.py
swift build --build-tests
# The fuzz corpus once through the fuzz target, without libFuzzer (tools/fuzz/README.md).
.build/debug/memsift-fuzz --timeout 10 --rss-limit-mb 1024 tools/fuzz/corpus
# The end-to-end tests run the debug CLI, which finds the shim next to itself.
install -m 0755 cshim/build/libmemsift.so .build/debug/libmemsift.so
swift test --skip-build
# The release build (setup.sh) traces: its collector is the one users run.
python3 tools/realprogs/programs.py --quick
python3 tools/realprogs/cpython_tests.py --quick
