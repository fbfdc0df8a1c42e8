"""``tinyml-edu course release`` and ``feedback``: nbgrader's generate_assignment and
generate_feedback over the whole class, each also packed as zips for an LMS or a USB stick."""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tinyml_edu import i18n
from tinyml_edu.course import config, lessons
from tinyml_edu.errors import InputError, ToolError


def _api(course: Path) -> tuple[Any, Any]:
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    cfg = config.load_config(course)
    return NbGraderAPI(config=cfg), CourseDirectory(config=cfg)


def source_dir(course: Path | str) -> Path:
    return config.source_dir(course)


def zip_folder(folder: Path, dest: Path, arc_root: str) -> Path:
    """Zip ``folder`` as ``arc_root/...``; written beside ``dest`` first so a failed run never
    leaves half a zip where a class would download it."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_suffix(".zip.partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and ".ipynb_checkpoints" not in path.parts:
                zf.write(path, f"{arc_root}/{path.relative_to(folder).as_posix()}")
    partial.replace(dest)
    return dest


def release(course: Path | str, names: list[str] | None = None,
            log: Callable[[str], None] = print, langs: tuple[str, ...] = ()) -> list[Path]:
    """Student versions of the named lessons (all when ``names`` is empty) in ``release/``, and
    ``zips/<lesson>.zip`` of each; and for each language in ``langs``, the same in that
    language: ``release-<lang>/<lesson>/`` and ``zips/<lesson>-<lang>.zip`` (see
    :func:`release_translated`). Returns the zips."""
    langs = tuple(dict.fromkeys(i18n.check_language(lang) for lang in langs))
    course = Path(course).resolve()
    api, coursedir = _api(course)
    src = source_dir(course)
    chosen = ([lessons.get_lesson(n, src) for n in names] if names else lessons.list_lessons(src))
    zips = []
    for lesson in chosen:
        log(f"releasing {lesson.id}")
        result = api.generate_assignment(lesson.id, force=True, create=True)
        if not result.get("success"):
            raise ToolError(f"nbgrader could not release {lesson.id}: {result.get('error')}\n"
                            f"{result.get('log', '')[-2000:]}\nfix the lesson (`tinyml-edu "
                            f"course check {lesson.id}` says what is wrong) and run again")
        released = Path(coursedir.format_path(coursedir.release_directory, ".", lesson.id))
        zips.append(zip_folder(released, course / "zips" / f"{lesson.id}.zip", lesson.id))
        for lang in langs:
            if lang != i18n.ENGLISH:
                zips.append(release_translated(course, released, lesson, lang, log))
    return zips


def release_translated(course: Path, released: Path, lesson: lessons.Lesson, lang: str,
                       log: Callable[[str], None] = print) -> Path:
    """The English release of ``lesson`` translated into ``lang``: ``release-<lang>/<lesson>/``
    (the notebook keeps its name, so a hand-in grades as the English one) and its zip, whose
    folder ``<lesson>-<lang>`` tells the checks which language to speak."""
    from tinyml_edu.course import translate

    dest = course / f"release-{lang}" / lesson.id
    staged = dest.with_name(dest.name + ".partial")
    shutil.rmtree(staged, ignore_errors=True)
    shutil.copytree(released, staged)
    total, done = translate.translate_folder(staged, lesson, lang)
    shutil.rmtree(dest, ignore_errors=True)
    staged.replace(dest)
    where = "" if done == total else f" ({total - done} of {total} paragraphs in English)"
    log(f"releasing {lesson.id} in {i18n.LANGUAGES[lang]}{where}")
    name = f"{lesson.id}-{lang}"
    return zip_folder(dest, course / "zips" / f"{name}.zip", name)


def feedback(course: Path | str, lesson: str, log: Callable[[str], None] = print) -> Path:
    """HTML feedback for every autograded submission of ``lesson`` (nbgrader's
    generate_feedback), and ``zips/<lesson>-feedback.zip`` with one folder per student."""
    course = Path(course).resolve()
    api, coursedir = _api(course)
    autograded = Path(coursedir.root) / coursedir.autograded_directory
    students = sorted(p.parent.name for p in autograded.glob(f"*/{lesson}") if p.is_dir())
    if not students:
        raise InputError(f"nothing autograded for {lesson}; run `tinyml-edu course autograde "
                         f"{lesson}` first")
    failed = []
    for student in students:
        result = api.generate_feedback(lesson, student, force=True)
        if not result.get("success"):
            failed.append(student)
            log(f"{student}: no feedback ({result.get('error') or 'see the log'})")
    feedback_root = Path(coursedir.root) / coursedir.feedback_directory
    bundle = course / "zips" / f"{lesson}-feedback.zip"
    bundle.parent.mkdir(parents=True, exist_ok=True)
    partial = bundle.with_suffix(".zip.partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
        for student in students:
            folder = feedback_root / student / lesson
            for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
                if path.is_file():
                    zf.write(path, f"{student}/{path.relative_to(folder).as_posix()}")
    partial.replace(bundle)
    log(f"feedback for {len(students) - len(failed)} of {len(students)} students: {bundle}")
    return bundle
