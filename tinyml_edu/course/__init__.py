"""The instructor's side of the course, over nbgrader's Python API.

- ``config``: the course folder and its nbgrader settings (timeouts, stubs, gradebook URL);
- ``lessons``: find the lesson notebooks and check they are well-formed nbgrader sources;
- ``check``: ``tinyml-edu course check``, which proves every lesson grades as it should.

Lessons call the library; nothing here imports a lesson, it only reads them as files.
"""
