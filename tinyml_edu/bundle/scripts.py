"""What a student runs from the bundle: install scripts and START-HERE.txt, per target OS.

Every script does the same four steps, so the words in START-HERE.txt hold everywhere:
check the bundle (``verify_bundle.py``), make a virtual environment in ``~/tinyml-edu/venv``,
install with pip from ``wheelhouse/`` only (``--no-index``: no network is ever used), and copy
the lessons to ``~/tinyml-edu/lessons`` without overwriting a lesson already there (a student's
work survives a reinstall). It then writes a start script that opens JupyterLab on the lessons.
"""

# ruff: noqa: E501 (the script templates keep one command per line)
from __future__ import annotations

from string import Template

# pip flags shared by every script. --isolated ignores pip config files and PIP_* variables on
# the student's machine (an index URL there must not matter); --no-index never uses a network.
PIP_FLAGS = "--isolated --no-index --only-binary=:all: --disable-pip-version-check"

INSTALL_SH = Template(r"""#!/bin/sh
# Install tinyml-edu from this folder with no network (Linux and macOS).
# Usage: sh install.sh [FOLDER]     (default folder: ~/tinyml-edu)
# Makes FOLDER/venv (Python ${python} virtual environment), FOLDER/lessons and FOLDER/start.sh.
set -eu
HERE=$$(cd "$$(dirname "$$0")" && pwd)
DEST=$${1:-$$HOME/tinyml-edu}
PY=""
for cand in "$${PYTHON:-}" python${python} python3 python; do
  [ -n "$$cand" ] || continue
  if command -v "$$cand" >/dev/null 2>&1 && "$$cand" -c \
      "import sys; sys.exit(sys.version_info[:2] != (${major}, ${minor}))" 2>/dev/null; then
    PY=$$cand; break
  fi
done
if [ -z "$$PY" ]; then
  echo "This bundle needs Python ${python}, and it was not found." >&2
  echo "Install it (Ubuntu/Debian: sudo apt install python${python} python${python}-venv;" >&2
  echo "macOS: the python.org installer), or run: PYTHON=/path/to/python${python} sh install.sh" >&2
  exit 1
fi
echo "1/4 checking every file of the bundle"
"$$PY" "$$HERE/verify_bundle.py" "$$HERE" >/dev/null || {
  echo "The bundle is damaged (the files are named above). Copy it again from a good copy." >&2
  exit 1; }
echo "2/4 making the virtual environment $$DEST/venv"
mkdir -p "$$DEST"
"$$PY" -m venv "$$DEST/venv" || {
  echo "Could not make a virtual environment. On Ubuntu/Debian: sudo apt install python${python}-venv" >&2
  exit 1; }
echo "3/4 installing tinyml-edu and its packages from the bundle (no network; a few minutes)"
"$$DEST/venv/bin/python" -m pip install ${pip_flags} --find-links "$$HERE/wheelhouse" \
  "$$HERE/wheelhouse/${wheel}"
echo "4/4 copying the lessons to $$DEST/lessons (lessons already there are kept)"
mkdir -p "$$DEST/lessons"
for lesson in "$$HERE"/lessons/*/; do
  name=$$(basename "$$lesson")
  [ -e "$$DEST/lessons/$$name" ] || cp -R "$$lesson" "$$DEST/lessons/$$name"
done
# Translated lessons (bundle build --lang): lessons-fr/ -> lessons/fr/, whose name tells the
# checks to answer in French.
for translated in "$$HERE"/lessons-*/; do
  [ -d "$$translated" ] || continue
  lang=$${translated%/}; lang=$${lang##*/lessons-}
  for lesson in "$$translated"*/; do
    name=$$(basename "$$lesson")
    mkdir -p "$$DEST/lessons/$$lang"
    [ -e "$$DEST/lessons/$$lang/$$name" ] || cp -R "$$lesson" "$$DEST/lessons/$$lang/$$name"
  done
done
cat > "$$DEST/start.sh" <<EOF
#!/bin/sh
# Opens JupyterLab on your lessons in the browser. Stop it with Ctrl-C in this window.
exec "$$DEST/venv/bin/jupyter" lab --notebook-dir "$$DEST/lessons"
EOF
chmod +x "$$DEST/start.sh"
"$$DEST/venv/bin/tinyml-edu" --version
echo "Done. Start the course with:  sh $$DEST/start.sh"
""")

INSTALL_PS1 = Template(r"""# Install tinyml-edu from this folder with no network (Windows).
# Usage: double-click install.bat, or: powershell -ExecutionPolicy Bypass -File install.ps1 [FOLDER]
# Makes FOLDER\venv (Python ${python}), FOLDER\lessons and FOLDER\start.bat;
# the default FOLDER is %USERPROFILE%\tinyml-edu.
param([string]$$Dest = (Join-Path $$env:USERPROFILE "tinyml-edu"))
$$ErrorActionPreference = "Stop"
$$Here = Split-Path -Parent $$MyInvocation.MyCommand.Path

function Fail($$message) { Write-Host $$message -ForegroundColor Red; exit 1 }

$$py = $$null
foreach ($$cand in @(@($$env:PYTHON), @("py", "-${python}"), @("python"))) {
  if (-not $$cand[0]) { continue }
  try {
    & $$cand[0] $$cand[1..9] -c "import sys; sys.exit(sys.version_info[:2] != (${major}, ${minor}))" 2>$$null
    if ($$LASTEXITCODE -eq 0) { $$py = $$cand; break }
  } catch { }
}
if (-not $$py) {
  Fail "This bundle needs Python ${python}, and it was not found. Install Python ${python} from python.org (tick 'Add python.exe to PATH'), then run install.bat again."
}
function Py { & $$py[0] $$py[1..9] @args }

Write-Host "1/4 checking every file of the bundle"
Py (Join-Path $$Here "verify_bundle.py") $$Here | Out-Null
if ($$LASTEXITCODE -ne 0) { Fail "The bundle is damaged (the files are named above). Copy it again from a good copy." }

Write-Host "2/4 making the virtual environment $$Dest\venv"
New-Item -ItemType Directory -Force -Path $$Dest | Out-Null
Py -m venv (Join-Path $$Dest "venv")
if ($$LASTEXITCODE -ne 0) { Fail "Could not make a virtual environment in $$Dest\venv." }

Write-Host "3/4 installing tinyml-edu and its packages from the bundle (no network; a few minutes)"
$$venvPy = Join-Path $$Dest "venv\Scripts\python.exe"
& $$venvPy -m pip install ${pip_flags} --find-links (Join-Path $$Here "wheelhouse") (Join-Path $$Here "wheelhouse\${wheel}")
if ($$LASTEXITCODE -ne 0) { Fail "pip could not install from the bundle (see above)." }

Write-Host "4/4 copying the lessons to $$Dest\lessons (lessons already there are kept)"
$$lessons = Join-Path $$Dest "lessons"
New-Item -ItemType Directory -Force -Path $$lessons | Out-Null
Get-ChildItem -Directory (Join-Path $$Here "lessons") | ForEach-Object {
  $$target = Join-Path $$lessons $$_.Name
  if (-not (Test-Path $$target)) { Copy-Item -Recurse $$_.FullName $$target }
}
# Translated lessons (bundle build --lang): lessons-fr\ -> lessons\fr\.
Get-ChildItem -Directory -Path $$Here -Filter "lessons-*" | ForEach-Object {
  $$langDir = Join-Path $$lessons ($$_.Name.Substring(8))
  New-Item -ItemType Directory -Force -Path $$langDir | Out-Null
  Get-ChildItem -Directory $$_.FullName | ForEach-Object {
    $$target = Join-Path $$langDir $$_.Name
    if (-not (Test-Path $$target)) { Copy-Item -Recurse $$_.FullName $$target }
  }
}
$$start = Join-Path $$Dest "start.bat"
Set-Content -Path $$start -Encoding ASCII -Value @(
  "@echo off",
  "rem Opens JupyterLab on your lessons in the browser. Stop it with Ctrl-C in this window.",
  "`"$$Dest\venv\Scripts\jupyter.exe`" lab --notebook-dir `"$$lessons`""
)
& (Join-Path $$Dest "venv\Scripts\tinyml-edu.exe") --version
Write-Host "Done. Start the course by double-clicking $$start"
""")

INSTALL_BAT = Template(r"""@echo off
rem Install tinyml-edu from this folder with no network: double-click this file.
powershell -NoProfile -ExecutionPolicy Bypass -File "%~dp0install.ps1" %*
pause
""")

START_HERE = Template("""START HERE: the TinyML course (tinyml-edu ${version}) without internet
=======================================================================

This folder holds everything the course needs: the Python packages, the lessons and the
data. Installing it uses no internet at all.

You need: a ${os_label} computer with Python ${python}, and about 2.5 GB of free disk space.

1. Install (a few minutes; run it once)
   ${install_step}
   It checks that every file of this folder is intact, then makes the folder
   ${dest} with the course's own Python packages (in "venv") and your copy of the lessons
   (in "lessons"). Installing again later keeps the lessons you have already worked on.

2. Start
   ${start_step}
   Your browser opens JupyterLab. Open a lesson folder, then its notebook, and work from the
   top. Save often (Ctrl-S). To stop, close the browser tab and press Ctrl-C in the window.
   If your teacher added other languages, they are in the folders es, fr and pt:
   Español: lessons/es   Français : lessons/fr   Português: lessons/pt

3. Check
   In a notebook cell type  !tinyml-edu doctor  and run it: it says what works and what to do
   about anything missing. No board? Every lesson has the virtual board as its alternative.

If something goes wrong
 - "This bundle needs Python ${python}": install that Python version first (ask your teacher;
   it may be on this stick), then start again at step 1.
 - "The bundle is damaged": a file of this folder was not copied well. Copy the folder again
   from your teacher's stick and start again at step 1.
 - Anything else: show the last lines of the window to your teacher.

For teachers: `tinyml-edu bundle verify FOLDER` checks a stick, `tinyml-edu bundle copy FOLDER
STICK` copies onto another and can be run again after an interruption. The wheels are for
${os_label} (${platform}) and Python ${python} only.
""")

_OS = {
    "linux": ("Linux", "In a terminal in this folder:   sh install.sh",
              "sh ~/tinyml-edu/start.sh", "~/tinyml-edu"),
    "macos": ("Mac (Apple silicon)", "In Terminal, in this folder:   sh install.sh",
              "sh ~/tinyml-edu/start.sh", "~/tinyml-edu"),
    "windows": ("Windows", "Double-click install.bat (if Windows asks, choose \"Run anyway\").",
                "Double-click start.bat in your tinyml-edu folder (in your user folder).",
                "tinyml-edu in your user folder"),
}


def render(os_name: str, python: str, wheel: str, platform: str = "") -> dict[str, str]:
    """``{file name: text}`` of the scripts and START-HERE.txt for a bundle."""
    from tinyml_edu import __version__

    major, minor = python.split(".")
    label, install_step, start_step, dest = _OS[os_name]
    values = dict(python=python, major=major, minor=minor, wheel=wheel, pip_flags=PIP_FLAGS,
                  version=__version__, os_label=label, install_step=install_step,
                  start_step=start_step, dest=dest, platform=platform or os_name)
    files = {"START-HERE.txt": START_HERE.substitute(values)}
    if os_name == "windows":
        files["install.ps1"] = INSTALL_PS1.substitute(values)
        files["install.bat"] = INSTALL_BAT.substitute(values)
    else:
        files["install.sh"] = INSTALL_SH.substitute(values)
    return files
