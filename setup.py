"""Only the cffi extension lives here: pyproject.toml cannot carry ``cffi_modules``."""

from setuptools import setup

setup(cffi_modules=["csrc/build_ffi.py:ffibuilder"])
