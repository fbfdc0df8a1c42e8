"""``python -m tinyml_edu.virtual_board [speed]``: a board on a pty until Ctrl-C."""

import sys

from tinyml_edu.virtual_board.board import run_forever

run_forever(speed=float(sys.argv[1]) if len(sys.argv) > 1 else 1.0)
