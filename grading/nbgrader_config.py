"""nbgrader settings for the tinyml-edu course (read by nbgrader, the Formgrader and
`tinyml-edu course`). The source is ../lessons. Change a setting by adding a line after
apply_defaults, e.g. `c.Execute.timeout = 900`."""

from pathlib import Path

from tinyml_edu.course.config import apply_defaults

c = get_config()  # noqa: F821 (nbgrader provides get_config)
here = Path(__file__).resolve().parent
# The lesson sources stay in the repository: the installed tinyml-edu package carries none.
apply_defaults(c, root=here, source=here.parent / "lessons")
