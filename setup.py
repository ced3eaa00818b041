"""Build of Växla's one C extension; everything else is in pyproject.toml.

``vaxla.media._fastrelay`` is the relay fast path of anchored calls
(src/vaxla/media/_fastrelay.c). It is optional: without a C compiler or
Python headers the build goes on without it and Växla relays in Python.
"""

import os
from typing import Any

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class BuildExt(build_ext):
    """``pip install -e .`` puts the built extension into src/ by copying it
    over the old one; replace it by a rename instead, so that processes of
    this checkout still running (servers under test) keep their mapped copy
    intact rather than crash on a file rewritten under them."""

    def copy_file(self, infile: Any, outfile: Any, *args: Any, **kwargs: Any) -> Any:
        if not str(outfile).endswith(".so"):
            return super().copy_file(infile, outfile, *args, **kwargs)
        tmp = f"{outfile}.{os.getpid()}.tmp"
        _, copied = super().copy_file(infile, tmp, *args, **kwargs)
        os.replace(tmp, outfile)
        return outfile, copied


setup(
    cmdclass={"build_ext": BuildExt},
    ext_modules=[
        Extension(
            "vaxla.media._fastrelay",
            ["src/vaxla/media/_fastrelay.c"],
            extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wextra"],
            optional=True,
        )
    ],
)
