"""The offline classroom bundle: one folder to copy onto USB sticks and install with no network.

Layout of a bundle (``tinyml-edu bundle build``)::

    START-HERE.txt       plain-words instructions for students
    install.sh           Linux/macOS: a virtual environment, pip install --no-index
    install.bat/.ps1     the same on Windows (the .bat runs the .ps1)
    verify_bundle.py     checks every file against SHA256SUMS, standard library only
    bundle.json          target OS, Python, tinyml-edu version
    wheelhouse/*.whl     every dependency for the target, and the tinyml-edu wheel (which
                         carries the data sets, manifest and datasheets: shipped once)
    lessons/NN-slug/     the student (released) versions of the lessons
    SHA256SUMS           sha256 of every other file, ``sha256sum -c`` format; written last

- ``checksums``: write and read ``SHA256SUMS``, ``verify``;
- ``transfer``: ``copy`` through ``.part`` files, resumable;
- ``build``: the wheelhouse for a target platform, released lessons, scripts, sizes;
- ``scripts``: the install scripts and START-HERE.txt.

Nothing here imports TensorFlow; ``build`` imports nbgrader only to release the lessons.
"""

from tinyml_edu.bundle.checksums import BundleError, VerifyResult, verify, write_manifest
from tinyml_edu.bundle.transfer import CopyResult, copy

__all__ = ["BundleError", "CopyResult", "VerifyResult", "copy", "verify", "write_manifest"]
