#!/usr/bin/env bash
# Session 36, Run 221: start-up with the L2 prefetch qualifier off and on (default), same build, same machine, one after
# the other (off, on, off, on): Run 219's JIT-heavy start-up rows (driver-jit, shipped-large) were 30-60% slower than
# Run 201's, while Run 220 found ptxas no slower on the qualified PTX.
set -uo pipefail
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
R=$OUT/run221; mkdir -p $R
for i in 1 2; do
  for v in off on; do
    ( [[ $v == on ]] && unset GEMS_PTX_L2_PREFETCH || export GEMS_PTX_L2_PREFETCH=off
      HARNESS_ARGS="--seed 221$i" OUT=$R/$v-$i bash tests/GemsInjector.GpuHarness/run-on-gpu.sh startup > $R/$v-$i.log 2>&1 )
    echo "$v $i exit $?" >> $R/exits.txt
  done
done
for f in $R/*.log; do echo "== $f"; grep -E "^startup (first|second|driver-jit|shipped|shipped-large):|enable-probe: Gems" $f; done > $R/summary.txt
cat $R/exits.txt $R/summary.txt
for d in $R/off-* $R/on-*; do gzip -9 $d/harness.log 2>/dev/null; done; gzip -9 $R/*.log
cd $OUT && tar czf run221.tgz run221 && rm -rf run221; find $OUT -type f
