"""cffi API-mode build script for ``fxq_explore._kernels``.

The C declarations are read from ``csrc/fxq_kernels.h`` (preprocessor lines dropped), so the header
is the single source of the API.  No ``-march``: the SIMD files carry per-function ``target``
attributes and the library picks a path at run time.  ``FXQ_EXTRA_CFLAGS`` (environment) appends
flags, e.g. ``-fsanitize=address`` for ``make asan``.
"""

import os
import re
import shlex
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
HEADER = HERE / "fxq_kernels.h"
SOURCES = ["fxq_common.c", "fxq_avx512.c", "fxq_avx2.c", "fxq_pairsat.c"]

EXTRA_CFLAGS = ["-O3", "-std=gnu99", "-Wall", "-Wextra", "-Wno-unused-parameter"]
EXTRA_CFLAGS += shlex.split(os.environ.get("FXQ_EXTRA_CFLAGS", ""))
EXTRA_LDFLAGS = shlex.split(os.environ.get("FXQ_EXTRA_LDFLAGS", ""))


def _cdef_text(path: Path) -> str:
    """The header without preprocessor lines and comments (cffi's cdef parses plain C)."""
    text = path.read_text()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    return "\n".join(lines)


def _path(p: Path) -> str:
    """Relative to the project root for setuptools (it wants relative sources in a build from
    the project), absolute otherwise (cffi's ``compile`` changes directory: ``make asan``)."""
    return os.path.relpath(p) if Path.cwd() == HERE.parent else str(p)


_flags_str = " ".join(["(python CFLAGS incl. -fwrapv)"] + EXTRA_CFLAGS)

ffibuilder = FFI()
ffibuilder.cdef(_cdef_text(HEADER))
ffibuilder.set_source(
    "fxq_explore._kernels",
    '#include "fxq_kernels.h"\n',
    sources=[_path(HERE / s) for s in SOURCES],
    include_dirs=[_path(HERE)],
    extra_compile_args=EXTRA_CFLAGS + [f'-DFXQ_COMPILE_FLAGS="{_flags_str}"'],
    extra_link_args=EXTRA_LDFLAGS,
    libraries=["m"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
