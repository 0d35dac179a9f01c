"""Is the installed PyOpenGL one this project's GL rendering works with?

pyrender 0.1.45 pins ``PyOpenGL==3.1.0``. ``scripts/setup.sh`` installs 3.1.10 over it with ``--no-deps`` (3.1.0
cannot drive OSMesa, and this project's GL code calls the 3.1.10 signatures), but any later ``pip install`` that
re-resolves the project's dependencies (installing an extra, ``pip install -e .``) puts 3.1.0 back, and rendering
then fails deep inside PyOpenGL (``TypeError: glDeleteTextures() takes 2 positional arguments but 3 were given``).
:func:`pyopengl_problem` notices that before any work and says in one line what to run.
"""

from __future__ import annotations

import re
import sys
from importlib.metadata import PackageNotFoundError, version

__all__ = ["MIN_PYOPENGL", "pyopengl_problem", "fix_command"]

MIN_PYOPENGL = (3, 1, 10)


def fix_command() -> str:
    """The command that puts the working PyOpenGL back into this interpreter's environment."""
    return f"{sys.executable} -m pip install --no-deps PyOpenGL=={'.'.join(map(str, MIN_PYOPENGL))}"


def pyopengl_problem() -> str | None:
    """One line saying what to run when the installed PyOpenGL is older than :data:`MIN_PYOPENGL`, else None
    (also when PyOpenGL is missing: the backend check reports that)."""
    try:
        installed = version("PyOpenGL")
    except PackageNotFoundError:
        return None
    parts = tuple(int(x) for x in re.findall(r"\d+", installed)[:3])
    if parts >= MIN_PYOPENGL:
        return None
    return (
        f"PyOpenGL {installed} is installed (pyrender's pin, put back by a pip install that re-resolved the "
        f"dependencies); GL rendering needs {'.'.join(map(str, MIN_PYOPENGL))}: run `{fix_command()}`"
    )
