"""`python -m tinyml_edu` is the same as the `tinyml-edu` command."""

import sys

from tinyml_edu.cli import main

sys.exit(main())
