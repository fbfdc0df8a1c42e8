"""The JupyterHub configurations load with JupyterHub's and nbgrader's own loaders, and the
Kubernetes values carry the keys the Zero to JupyterHub chart expects."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")
pytest.importorskip("jupyterhub", reason="pip install -e '.[test]' installs JupyterHub")

HUB = Path(__file__).resolve().parents[1] / "hub"
SNIPPET = HUB / "jupyterhub_config.d" / "tinyml_edu.py"
COURSE = "tinyml-edu"

# JupyterHub's own start-up, short of starting the proxy and the services: it reads the config
# file, validates every trait, creates roles (unknown scopes fail here), groups, users and the
# services (unknown service fields fail here). `prelude` mimics what runs before our snippet.
_INITIALIZE = """
import asyncio, json, sys
from jupyterhub.app import JupyterHub
from jupyterhub import orm

async def main(config_file, tmp):
    app = JupyterHub()
    await app.initialize(["--config", config_file,
                          f"--JupyterHub.db_url=sqlite:///{tmp}/hub.sqlite",
                          f"--JupyterHub.cookie_secret_file={tmp}/cookie_secret",
                          "--JupyterHub.authenticator_class=dummy",
                          "--Authenticator.allowed_users={'instructor1', 'student1'}"])
    services = {name: {"managed": s.managed, "url": s.url, "command": s.command,
                       "user": s.user, "environment": s.environment}
                for name, s in app._service_map.items()}
    groups = {g.name: sorted(u.name for u in g.users) for g in app.db.query(orm.Group)}
    roles = {r.name: {"scopes": sorted(r.scopes), "services": [s.name for s in r.services],
                      "groups": [g.name for g in r.groups]} for r in app.db.query(orm.Role)}
    print("RESULT" + json.dumps({"services": services, "groups": groups, "roles": roles}))

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def _initialize_hub(tmp_path: Path, config_text: str, env: dict[str, str]) -> dict:
    config = tmp_path / "jupyterhub_config.py"
    config.write_text(config_text)
    run = subprocess.run([sys.executable, "-c", _INITIALIZE, str(config), str(tmp_path)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, **env))
    assert run.returncode == 0, run.stderr[-4000:]
    line = next(line for line in run.stdout.splitlines() if line.startswith("RESULT"))
    return json.loads(line[len("RESULT"):])


def _check_course_roles_and_groups(hub: dict) -> None:
    # the grader is a hub user in formgrade-<course>: nbgrader's plugin in the course service
    # looks it up (tests/test_hub_live.py: without it every formgrader action fails)
    assert hub["groups"][f"formgrade-{COURSE}"] == ["grader-tinyml-edu", "instructor1"]
    assert hub["groups"][f"nbgrader-{COURSE}"] == ["instructor1"]
    assert f"access:services!service={COURSE}" in hub["roles"][f"formgrade-{COURSE}"]["scopes"]
    assert hub["roles"][f"{COURSE}-course-service"]["services"] == [COURSE]
    assert "admin:groups" in hub["roles"][f"{COURSE}-course-service"]["scopes"]


def test_tljh_snippet_initializes_jupyterhub(tmp_path):
    """TLJH: the hub starts the course service itself, as the grader account."""
    hub = _initialize_hub(tmp_path, SNIPPET.read_text(), {
        "TINYML_EDU_INSTRUCTORS": "instructor1",
        "TINYML_EDU_GRADEBOOK_URL": "postgresql://grader:secret@localhost/tinyml_edu"})
    _check_course_roles_and_groups(hub)
    service = hub["services"][COURSE]
    assert service["managed"] and service["user"] == "grader-tinyml-edu"
    assert service["command"][0] == "/opt/tljh/user/bin/jupyterhub-singleuser"
    assert service["environment"]["TINYML_EDU_GRADEBOOK_URL"].startswith("postgresql://")


def test_course_service_allows_the_formgrader_iframe(monkeypatch):
    """The service's command line sets CSP frame-ancestors 'self' (JupyterHub >= 4.1 sends
    'none' unless a header is already set), parsed as Jupyter Server parses it."""
    from jupyter_server.serverapp import ServerApp
    from traitlets.config import Config

    monkeypatch.delenv("TINYML_EDU_COURSE_SERVICE_URL", raising=False)
    c = Config()
    exec(compile(SNIPPET.read_text(), str(SNIPPET), "exec"), {"get_config": lambda: c})
    service = c.JupyterHub.services.get_value([])[0]
    app = ServerApp()
    app.parse_command_line(service["command"][1:])
    assert app.tornado_settings["headers"]["Content-Security-Policy"] == "frame-ancestors 'self'"
    # its terminal keeps the service's PATH, where nbgrader, alembic and tinyml-edu are
    assert app.terminado_settings == {"shell_command": ["/bin/bash"]}
    assert service["environment"]["PATH"].startswith("/opt/tljh/user/bin:")


def test_nobody_logs_in_as_the_grader(monkeypatch):
    """The grader is a hub user (nbgrader's plugin in the course service looks it up); the
    snippet's post-authentication hook refuses its name whatever the authenticator said."""
    import logging

    from traitlets.config import Config

    monkeypatch.delenv("TINYML_EDU_GRADER", raising=False)
    c = Config()
    exec(compile(SNIPPET.read_text(), str(SNIPPET), "exec"), {"get_config": lambda: c})
    hook = c.Authenticator.post_auth_hook

    class Authenticator:
        log = logging.getLogger("test")

    assert hook(Authenticator, None, {"name": "grader-tinyml-edu"}) is None
    assert hook(Authenticator, None, {"name": "student1"}) == {"name": "student1"}


def _values() -> dict:
    return yaml.safe_load((HUB / "z2jh" / "values.yaml").read_text())


def test_z2jh_extra_config_is_the_snippet_and_initializes_jupyterhub(tmp_path):
    values = _values()
    extra = values["hub"]["extraConfig"]["tinyml-edu"]
    assert extra == SNIPPET.read_text(), "values.yaml's hub.extraConfig drifted from the snippet"
    # The chart's jupyterhub_config.py sets these lists before running hub.extraConfig.
    prelude = "c = get_config()\nc.JupyterHub.services = []\nc.JupyterHub.load_roles = []\n"
    env = {k: str(v) for k, v in values["hub"]["extraEnv"].items() if isinstance(v, str)}
    env["TINYML_EDU_COURSE_TOKEN"] = "0" * 64  # from the Secret in a cluster
    hub = _initialize_hub(tmp_path, prelude + extra, env)
    _check_course_roles_and_groups(hub)
    service = hub["services"][COURSE]
    assert not service["managed"] and service["url"] == "http://tinyml-edu-course:8888"


# Keys of the Zero to JupyterHub chart (values.schema.yaml of jupyterhub/zero-to-jupyterhub-k8s,
# checked against commit 48ea50e of 2026-07-24) that these values use; a typo in a key is
# silently ignored by helm, so every leaf path must be one of these.
Z2JH_KEYS = {
    "hub.config", "hub.extraEnv", "hub.extraConfig", "singleuser.image.name",
    "singleuser.image.tag", "singleuser.defaultUrl", "singleuser.memory.limit",
    "singleuser.memory.guarantee", "singleuser.cpu.limit", "singleuser.cpu.guarantee",
    "singleuser.storage.capacity", "singleuser.storage.extraVolumes",
    "singleuser.storage.extraVolumeMounts", "singleuser.extraFiles", "singleuser.extraEnv",
    "cull.enabled", "cull.timeout", "cull.every", "prePuller.hook.enabled",
    "scheduling.userScheduler.enabled",
}
# Subtrees whose keys are free-form (traitlets config, env names, file names).
Z2JH_FREE = {"hub.config", "hub.extraEnv", "hub.extraConfig", "singleuser.extraFiles",
             "singleuser.extraEnv"}


def _leaf_paths(node: object, path: str = "") -> set[str]:
    if path in Z2JH_FREE or not isinstance(node, dict):
        return {path}
    return set().union(*(_leaf_paths(v, f"{path}.{k}" if path else k) for k, v in node.items()))


def test_z2jh_values_use_only_chart_keys():
    values = _values()
    assert _leaf_paths(values) <= Z2JH_KEYS, _leaf_paths(values) - Z2JH_KEYS
    su = values["singleuser"]
    assert su["memory"]["limit"] == "2G" and su["cpu"]["limit"] == 1
    mounts = {m["mountPath"] for m in su["storage"]["extraVolumeMounts"]}
    assert "/srv/nbgrader/exchange" in mounts
    nbgrader_file = su["extraFiles"]["nbgrader-config"]
    assert nbgrader_file["mountPath"] == "/etc/jupyter/nbgrader_config.py"
    assert nbgrader_file["stringData"] == (HUB / "nbgrader_config.py").read_text()
    token = values["hub"]["extraEnv"]["TINYML_EDU_COURSE_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert token == {"name": "tinyml-edu-course", "key": "token"}


def test_course_service_manifests_parse_and_match_the_values():
    docs = list(yaml.safe_load_all((HUB / "z2jh" / "course-service.yaml").read_text()))
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert {("PersistentVolumeClaim", "nbgrader-exchange"), ("Deployment", "tinyml-edu-course"),
            ("Service", "tinyml-edu-course")} <= kinds
    exchange = next(d for d in docs if d["metadata"]["name"] == "nbgrader-exchange")
    assert exchange["spec"]["accessModes"] == ["ReadWriteMany"]
    pod = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["JUPYTERHUB_SERVICE_PREFIX"]["value"] == f"/services/{COURSE}/"
    assert env["TINYML_EDU_GRADEBOOK_URL"]["valueFrom"]["secretKeyRef"]["name"] == \
        "tinyml-edu-course"
    assert "frame-ancestors" in pod["containers"][0]["command"][-1]
    assert _values()["hub"]["extraEnv"]["TINYML_EDU_COURSE_SERVICE_URL"] == \
        "http://tinyml-edu-course:8888"


# tljh-config keys (tljh/config_schema.py and the documented services.cull.* settings).
TLJH_KEYS = {"users.admin", "users.allowed", "users.banned", "users.extra_user_groups",
             "limits.memory", "limits.cpu", "user_environment.default_app",
             "services.cull.enabled", "services.cull.timeout", "services.cull.every",
             "services.cull.concurrency", "services.cull.users", "services.cull.max_age",
             "http.port", "http.address", "https.enabled"}


def test_tljh_config_uses_only_tljh_keys():
    config = yaml.safe_load((HUB / "tljh" / "config.yaml").read_text())
    paths = set()

    def walk(node: object, path: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{path}.{k}" if path else k)
        else:
            paths.add(path)

    walk(config, "")
    assert paths <= TLJH_KEYS, paths - TLJH_KEYS
    assert config["limits"]["memory"] == "2G" and isinstance(config["limits"]["cpu"], int)


def test_global_nbgrader_config_loads_with_nbgrader(tmp_path):
    from nbgrader.auth import JupyterHubAuthPlugin
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(HUB)).load_config()
    assert config.Exchange.root == "/srv/nbgrader/exchange"
    assert config.Exchange.path_includes_course is True
    assert config.Authenticator.plugin_class is JupyterHubAuthPlugin
    assert COURSE in config.NbGrader.course_titles
    # a student's Validate gets the grader's cell limit, not nbgrader's 30 s
    assert config.Execute.timeout == config.ExecutePreprocessor.timeout == 600
