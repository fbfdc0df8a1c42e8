"""The instructor's side of the course, over nbgrader's Python API.

- ``config``: the course folder and its nbgrader settings (timeouts, stubs, gradebook URL);
- ``lessons``: find the lesson notebooks and check they are well-formed nbgrader sources;
- ``check``: ``tinyml-edu course check``, which proves every lesson grades as it should;
- ``release``: ``release`` (student versions, a zip per lesson) and ``feedback``;
- ``collect``: hand-ins from an LMS zip, a folder or a USB stick, matched to ``students.csv``;
- ``autograde`` and ``sandbox``: every hand-in in parallel, each in its own sandboxed process;
  ``handin`` reads each hand-in tolerantly, ``isolation`` builds the worker's private root,
  ``cells`` runs the cells across kernel restarts;
- ``export``: the grades as CSV, and ``report``, which questions the class found hardest.

Lessons call the library; nothing here imports a lesson, it only reads them as files.
"""
