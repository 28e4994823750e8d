# The native backend addon, built by scripts/build-native.js (npm install) with node-gyp:
#   node-gyp rebuild --directory native  ->  native/build/Release/loom_native.node
# Plain C11 + pthreads, no external libraries. The SIMD paths are chosen at run time
# (target attributes / target_clones), so no -march flag: one build runs on any x86-64 or ARM.
# -fno-trapping-math lets GCC vectorise the branch-free fast_expf loops (no FP traps are used).
{
  "targets": [
    {
      "target_name": "loom_native",
      "sources": ["addon.c", "gemm.c", "attention.c", "rowwise.c", "pool.c"],
      "cflags_c": ["-std=gnu11", "-O3", "-fno-math-errno", "-fno-trapping-math", "-Wall", "-Wextra"],
      "cflags!": ["-O2", "-O0"],
      "libraries": ["-lpthread", "-lm"],
      "xcode_settings": {"OTHER_CFLAGS": ["-std=gnu11", "-O3", "-fno-math-errno", "-fno-trapping-math"]}
    }
  ]
}
