"""Builds lstmlite._core: the C kernels in src/ and their Cython binding.

Compiler directives live here and only here. LSTMLITE_DEBUG_BUILD=1 turns Cython's bounds and
wraparound checks back on and builds the C code without optimisation, for one CI run of the
whole suite in a debug build.
"""
import os
import sys

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("LSTMLITE_DEBUG_BUILD") == "1"

# Every kernel set's file is compiled on every target; each holds code only where its
# instructions exist (#if on the architecture), and dispatch.c picks among them at run time.
C_SOURCES = [
    "src/dispatch.c",
    "src/kernels_generic.c",
    "src/kernels_avx2.c",
    "src/kernels_avx512.c",
    "src/kernels_neon.c",
    "src/kernels_dotprod.c",
    "src/int8.c",
    "src/pack.c",
    "src/activations.c",
    "src/lstm.c",
    "src/gru.c",
    "src/rnn.c",
    "src/dense.c",
    "src/conv.c",
    "src/model.c",
]

if sys.platform == "win32":
    compile_args = ["/O2"]
else:
    # -O3 lets GCC vectorize the kernels' loops; never -ffast-math: the kernels rely on IEEE
    # comparisons to keep NaN and on a fixed order of additions for repeatable results.
    compile_args = ["-O0", "-g"] if DEBUG else ["-O3"]
    # -ffp-contract=fast: a*b + c becomes one fused multiply-add where the target has one
    # (the AVX2 set, aarch64); ISO C mode would otherwise switch that off.
    # -fno-trapping-math: nothing here reads floating-point exception flags, and without it
    # GCC will not if-convert the clamps in exp/sigmoid/tanh, so those loops stay scalar.
    # NaN and infinity keep their IEEE meaning (that is -ffinite-math-only, never used here).
    # -fno-wrapv: Python's own CFLAGS (Debian's, and most builds') carry -fwrapv, which tells
    # GCC that signed integers may wrap; nothing here relies on that (the int8 corrections are
    # unsigned), and with it the loops' index arithmetic cannot be simplified: a NEON int8
    # (64, 512) step took 479k instructions instead of 412k under qemu (bench_arm.py).
    compile_args += ["-std=c11", "-ffp-contract=fast", "-fno-trapping-math", "-fno-wrapv", "-Wall", "-Wextra", "-Wno-unused-function",
                     "-Wno-unused-parameter", "-Wno-sign-compare"]

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": not DEBUG,
    "embedsignature": True,
}

# Editing a header rebuilds the extension.
HEADERS = ["src/lstmlite.h", "src/kernels.h", "src/kernels_impl.h", "src/gemm_s8_tiles.h",
           "src/gemm_s8_panels.h",
           "src/gemm_f32_panels.h"]

extension = Extension(
    "lstmlite._core",
    sources=["src/_core.pyx"] + C_SOURCES,
    depends=HEADERS,
    include_dirs=["src", np.get_include()],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    extra_compile_args=compile_args,
)

setup(ext_modules=cythonize([extension], compiler_directives=directives))
