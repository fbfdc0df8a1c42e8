"""The projects `tinyml-edu run` knows: one module each, every module defines ``PROJECT``.

A project names its data set, how to turn it into model inputs (the features stage, with the
parameters that must travel to the board) and which model to train with which settings.
"""

from tinyml_edu.errors import UnknownNameError
from tinyml_edu.projects import (
    cars,
    ecg,
    elephant_rumbles,
    gestures,
    images,
    kws,
    sine,
    water_quality,
    wingbeats,
)
from tinyml_edu.projects.base import Prepared, Project, prepare_splits

PROJECTS: dict[str, Project] = {
    m.PROJECT.name: m.PROJECT
    for m in (sine, gestures, wingbeats, ecg, water_quality, kws, elephant_rumbles, images,
              cars)
}


def get_project(name: str) -> Project:
    if name not in PROJECTS:
        raise UnknownNameError(f"unknown project {name!r}; available projects: "
                               f"{', '.join(PROJECTS)}")
    return PROJECTS[name]


__all__ = ["PROJECTS", "Prepared", "Project", "get_project", "prepare_splits"]
