#!/usr/bin/env bash
# Start-up: today's build against 88381ff's (Run 88's) on one lease. The old build is today's published harness with the
# four GemsInjector assemblies and the shipped PTX archive of 88381ff swapped in (same .NET runtime), run by a copy of
# run-on-gpu.sh in its own root. Alternating, twice each; rows to $OUT/st-{new,old}-{1,2}/startup.csv.
set -uo pipefail
root=$(pwd); old=/tmp/root88
rm -rf $old /tmp/swap && mkdir -p $old/.gpu $old/tests/GemsInjector.GpuHarness /tmp/swap
cp tests/GemsInjector.GpuHarness/run-on-gpu.sh $old/tests/GemsInjector.GpuHarness/
tar -xJf .gpu/harness.tar.xz -C /tmp/swap && cp .gpu/old88/* /tmp/swap/harness/ && (cd /tmp/swap && tar -cf - harness | xz -T0 -1 > $old/.gpu/harness.tar.xz)
for round in 1 2; do
  STARTUP_TIMEOUT_S=60 OUT=$OUT/st-new-$round bash tests/GemsInjector.GpuHarness/run-on-gpu.sh startup > $OUT/st-new-$round.log 2>&1
  STARTUP_TIMEOUT_S=60 OUT=$OUT/st-old-$round bash $old/tests/GemsInjector.GpuHarness/run-on-gpu.sh startup > $OUT/st-old-$round.log 2>&1
done
cd $root
