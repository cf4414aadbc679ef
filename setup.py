"""The optional compiled kernel (lstm_cli/_kernel.c): built when a C compiler is there.

``optional=True``: a missing or failing compiler is a warning, never a failed install; the
NumPy backend then runs (``lstm-cell --version`` says which backend is in use). Portable
flags only (no ``-march=native``): the wheel runs on any CPU of its platform.
"""

import sys

from setuptools import Extension, setup

POSIX = sys.platform != "win32"
FLAGS = ["-O3", "-ffp-contract=off", "-fno-trapping-math", "-pthread"] if POSIX else []

setup(
    ext_modules=[
        Extension(
            "lstm_cli._kernel",
            sources=["lstm_cli/_kernel.c"],
            extra_compile_args=FLAGS,
            extra_link_args=["-pthread"] if POSIX else [],
            optional=True,
        )
    ]
)
