"""A class on this machine, for real: JupyterHub with the project's hub configuration, real Unix
accounts, nbgrader's exchange, the course service and a PostgreSQL gradebook.

``tests/test_hub_live.py`` and ``benchmarks/bench_hub.py`` stand it up with :func:`live_class`:

- Unix accounts made with ``useradd`` (random suffix per run, homes under the run's folder,
  private as Ubuntu makes them) with random passwords; JupyterHub's PAMAuthenticator checks
  them, so logging in and getting an API token go through PAM as on The Littlest JupyterHub;
- ``python -m jupyterhub`` as root with ``hub/jupyterhub_config.d/tinyml_edu.py`` (the file
  TLJH loads) plus a local part: ports, the authenticator, LocalProcessSpawner (each server
  runs as its user, as TLJH's spawner does), and the course service moved to this run's grader
  account, course folder and a free port;
- ``configurable-http-proxy`` from npm (``.ci/chp``, or on ``PATH``, or ``$TINYML_EDU_CHP``);
- the exchange (mode 1777) in the run's folder instead of ``/srv/nbgrader/exchange``, through a
  config that loads ``hub/nbgrader_config.py`` and changes only ``Exchange.root``;
- a throw-away PostgreSQL cluster (Debian's ``postgresql``), local socket and peer
  authentication only, with the gradebook database owned by the grader account.

Everything is removed at the end, even on failure: servers, accounts, the cluster and the
folder. Nothing is downloaded.

When the Python the hub runs on sits under a folder other users cannot enter (a pyenv in
``/root``), the hub runs in its own mount namespace where that folder is a tmpfs holding only
what the accounts need (the Python, the checkout), bind-mounted read-only: the accounts run the
same interpreter and packages, and the machine's own ``/root`` is untouched.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
COURSE = "tinyml-edu"
LESSON = "01-hello-tinyml"
REQUIRE_ENV = "TINYML_EDU_REQUIRE_HUB"  # .ci/run sets it: a missing piece fails, never skips
CHP_ENV = "TINYML_EDU_CHP"  # configurable-http-proxy, when neither .ci/chp nor PATH has it
START_TIMEOUT_S = 180.0  # 2 shared cores: a server's first start imports JupyterLab and nbgrader
HTTP_TIMEOUT_S = 600.0  # a Validate runs the whole lesson inside the request


def _postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    return Path(found[-1]).parent if found else None


def find_chp() -> str | None:
    """The proxy: ``$TINYML_EDU_CHP``, the copy ``.ci/run`` installs in ``.ci/chp``, or PATH."""
    local = REPO / ".ci" / "chp" / "node_modules" / ".bin" / "configurable-http-proxy"
    for candidate in (os.environ.get(CHP_ENV), str(local)):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("configurable-http-proxy")


def missing() -> str | None:
    """Why a live class cannot be stood up here, or None."""
    if os.geteuid() != 0:
        return "needs root (it creates Unix accounts and runs JupyterHub as root)"
    if sys.platform != "linux":
        return "needs Linux (PAM, useradd, LocalProcessSpawner's setuid)"
    if _postgres_bin() is None:
        return ("Debian's postgresql is not installed (/usr/lib/postgresql/*/bin/postgres); "
                "`apt-get install postgresql` (.ci/run does)")
    if find_chp() is None:
        return ("configurable-http-proxy is missing: `npm ci --prefix .ci/chp` (.ci/run does), "
                f"or put it on PATH, or set ${CHP_ENV}")
    for tool in ("useradd", "userdel", "chpasswd", "runuser", "unshare", "nsenter", "mount"):
        if shutil.which(tool) is None:
            return f"{tool} is missing"
    for module in ("jupyterhub", "pamela", "psycopg", "nbgrader", "requests", "psutil"):
        try:
            __import__(module)
        except ImportError:
            return f"the Python package {module} is missing: pip install -e '.[test]'"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess:
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 120)
    done = subprocess.run(cmd, **kw)
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n"
                           f"{(done.stdout or '')[-2000:]}\n{(done.stderr or '')[-3000:]}")
    return done


# --- folders other accounts cannot enter ------------------------------------------------------


def _needed_paths() -> list[Path]:
    """What the hub and the accounts' processes must reach: the interpreter, the venv, this
    checkout, the proxy."""
    paths = [sys.executable, sys.prefix, sys.base_prefix, REPO, find_chp() or REPO]
    return sorted({Path(os.path.realpath(p)) for p in paths})


def blocked_dirs() -> dict[Path, set[str]]:
    """``{folder other accounts cannot enter: {its children on the way to a needed path}}``."""
    blocked: dict[Path, set[str]] = {}
    for target in _needed_paths():
        if target.is_dir() and not os.stat(target).st_mode & stat.S_IXOTH:
            raise RuntimeError(f"{target} is closed to other users: `chmod o+rx` it")
        closed = [p for p in reversed(target.parents) if not os.stat(p).st_mode & stat.S_IXOTH]
        if len(closed) > 1:
            raise RuntimeError(f"{closed[1]} and {closed[0]} are closed to other users: put "
                               "the venv and the checkout where other accounts can read")
        if closed:
            blocked.setdefault(closed[0], set()).add(target.relative_to(closed[0]).parts[0])
    return blocked


def _namespace_script(stage: Path, blocked: dict[Path, set[str]]) -> str:
    """Shell lines, run in a new mount namespace, that replace each blocked folder by a tmpfs
    holding read-only bind mounts of only the needed children."""
    lines = ["set -e", "mount --make-rprivate /"]
    n = 0
    for folder, children in sorted(blocked.items()):
        pairs = []
        for child in sorted(children):
            held = stage / str(n)
            n += 1
            lines += [f"mkdir -p '{held}'", f"mount --rbind '{folder / child}' '{held}'"]
            pairs.append((child, held))
        lines.append(f"mount -t tmpfs -o mode=0755,size=1m tmpfs '{folder}'")
        for child, held in pairs:
            lines += [f"mkdir -p '{folder / child}'",
                      f"mount --rbind '{held}' '{folder / child}'",
                      f"mount -o remount,bind,ro '{folder / child}'"]
    return "\n".join(lines)


# --- the class --------------------------------------------------------------------------------


@dataclass
class Account:
    name: str
    password: str
    home: Path
    token: str = ""  # a hub API token, got with the password through PAM


@dataclass
class Postgres:
    bindir: Path
    data: Path
    socket_dir: Path
    port: int
    database: str = "tinyml_edu"

    def url(self) -> str:
        # a local socket and peer authentication, as hub/README.md's TLJH recipe: no password
        return (f"postgresql+psycopg:///{self.database}"
                f"?host={self.socket_dir}&port={self.port}")

    def psql(self, sql: str, user: str = "postgres") -> list[list[str]]:
        """Rows of ``sql`` run by ``user`` (default the superuser) through the local socket."""
        cmd = [str(self.bindir / "psql"), "-X", "-A", "-t", "-F", "\t", "-v",
               "ON_ERROR_STOP=1", "-h", str(self.socket_dir), "-p", str(self.port),
               "-d", self.database, "-c", sql]
        out = _run(["runuser", "-u", user, "--", *cmd], cwd="/").stdout
        return [line.split("\t") for line in out.splitlines() if line]


@dataclass
class LiveClass:
    base: Path
    url: str  # the proxy's public URL
    instructor: Account
    students: list[Account]
    grader: Account
    course: Path  # the grader's course folder
    exchange: Path
    pg: Postgres
    hub_log: Path
    env: dict[str, str]  # what the accounts' processes get (PATH, PYTHONPATH, gradebook)
    proc: subprocess.Popen | None = None
    admin_token: str = ""
    namespace: bool = False
    ports: dict[str, int] = field(default_factory=dict)

    # -- HTTP ------------------------------------------------------------------------------
    def api(self, method: str, path: str, token: str | None = None, **kw: Any) -> Any:
        """A call through the proxy (``path`` from the root: ``/hub/api/...``,
        ``/user/NAME/...``, ``/services/...``); the response."""
        import requests

        headers = kw.pop("headers", {})
        headers["Authorization"] = f"token {token or self.admin_token}"
        kw.setdefault("timeout", HTTP_TIMEOUT_S)
        return requests.request(method, self.url + path, headers=headers,
                                allow_redirects=False, **kw)

    def json(self, method: str, path: str, token: str | None = None, **kw: Any) -> Any:
        r = self.api(method, path, token, **kw)
        if r.status_code >= 400:
            raise AssertionError(f"{method} {path}: HTTP {r.status_code}: {r.text[:2000]}\n"
                                 f"hub log:\n{self.log_tail()}")
        return r.json() if r.text else None

    def log_tail(self, chars: int = 6000) -> str:
        try:
            return self.hub_log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    # -- accounts --------------------------------------------------------------------------
    def as_user(self, user: str, argv: list[str], env: dict[str, str] | None = None,
                cwd: Path | str | None = None, check: bool = True,
                timeout: float = 900) -> subprocess.CompletedProcess:
        """``argv`` as Unix account ``user``, in the hub's mount namespace (what its servers
        see), with the accounts' environment and HOME."""
        home = Path(os.path.expanduser(f"~{user}"))
        full = dict(self.env, HOME=str(home), USER=user, LOGNAME=user, **(env or {}))
        cmd = ["runuser", "-u", user, "--", "env", "-i",
               *[f"{k}={v}" for k, v in full.items()], *argv]
        if self.namespace and self.proc is not None:
            cmd = ["nsenter", "-t", str(self.proc.pid), "-m", "--", *cmd]
        done = subprocess.run(cmd, cwd=str(cwd or home), capture_output=True, text=True,
                              timeout=timeout)
        if check and done.returncode:
            raise AssertionError(f"as {user}: {' '.join(argv)[:300]} failed "
                                 f"({done.returncode}):\n{done.stdout[-3000:]}\n"
                                 f"{done.stderr[-5000:]}")
        return done

    def python_as(self, user: str, code: str, **kw: Any) -> subprocess.CompletedProcess:
        return self.as_user(user, [sys.executable, "-c", code], **kw)

    def login_token(self, account: Account) -> str:
        """An API token for ``account``, got the way a script would: its name and password,
        checked by the hub's authenticator (PAM)."""
        import requests

        r = requests.post(f"{self.url}/hub/api/users/{account.name}/tokens", timeout=60,
                          json={"auth": {"username": account.name,
                                         "password": account.password},
                                "note": "tinyml-edu live class", "expires_in": 7200})
        if r.status_code != 201:
            raise AssertionError(f"no token for {account.name}: HTTP {r.status_code} "
                                 f"{r.text[:500]}\n{self.log_tail()}")
        account.token = r.json()["token"]
        return account.token

    def start_server(self, account: Account) -> None:
        r = self.api("POST", f"/hub/api/users/{account.name}/server", account.token)
        if r.status_code not in (201, 202, 400):  # 400: already running
            raise AssertionError(f"spawn {account.name}: HTTP {r.status_code} {r.text[:500]}")

    def wait_server(self, account: Account) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            model = self.json("GET", f"/hub/api/users/{account.name}")
            server = model.get("servers", {}).get("")
            if server and server.get("ready"):
                return
            if not model.get("pending") and not server:
                break  # the spawn failed
            time.sleep(1)
        raise AssertionError(f"{account.name}'s server did not start:\n{self.log_tail()}")

    def terminal(self, prefix: str, token: str, command: str,
                 timeout: float = HTTP_TIMEOUT_S) -> tuple[int, str]:
        """Type ``command`` in a new JupyterLab terminal of the server at ``prefix``
        (``/services/tinyml-edu``, ``/user/NAME``), as its user does in the browser; its exit
        status and what the terminal showed."""
        import re

        import websocket

        name = self.json("POST", f"{prefix}/api/terminals", token)["name"]
        ws = websocket.create_connection(
            f"ws{self.url[4:]}{prefix}/terminals/websocket/{name}",
            header=[f"Authorization: token {token}"], timeout=timeout)
        shown, done = "", re.compile(r"__END__(\d+)__")
        try:
            ws.send(json.dumps(["stdin", f"{command}; echo __END__$?__\r"]))
            deadline = time.monotonic() + timeout
            while not (found := done.search(shown)):
                if time.monotonic() > deadline:
                    raise AssertionError(f"terminal: {command} still running:\n{shown[-3000:]}")
                kind, *data = json.loads(ws.recv())
                if kind == "stdout":
                    shown += data[0]
        finally:
            ws.close()
            self.api("DELETE", f"{prefix}/api/terminals/{name}", token)
        return int(found.group(1)), shown

    def processes(self, user: str) -> list[Any]:
        """Every process the Unix account runs (its server and kernels)."""
        import psutil

        out = []
        for p in psutil.process_iter(["username"]):
            if p.info["username"] == user:
                out.append(p)
        return out


def usage(processes: list[Any]) -> dict[str, float]:
    """Memory and CPU of a set of processes: RSS and PSS (shared pages split between their
    users: what adding one more student costs) in MB, CPU seconds including the children they
    have reaped (kernels that have exited)."""
    import psutil

    rss = pss = cpu = 0.0
    for p in processes:
        with contextlib.suppress(psutil.Error):
            mem = p.memory_full_info()
            times = p.cpu_times()
            rss, pss = rss + mem.rss, pss + mem.pss
            cpu += times.user + times.system + times.children_user + times.children_system
    return {"rss_mb": rss / 2**20, "pss_mb": pss / 2**20, "cpu_s": cpu,
            "processes": float(len(processes))}


# --- standing it up ---------------------------------------------------------------------------


def _useradd(name: str, home: Path) -> Account:
    # HOME_MODE 0750, as Ubuntu 22.04+ (TLJH's systems) makes homes: with a private group, no
    # other account can enter. Debian 12's default (0755 from UMASK 022) would let every
    # student read every other's work: hub/README.md says to set HOME_MODE there.
    _run(["useradd", "--create-home", "--home-dir", str(home), "--shell", "/bin/bash",
          "-K", "HOME_MODE=0750", name])
    password = secrets.token_urlsafe(18)
    _run(["chpasswd"], input=f"{name}:{password}\n")
    return Account(name, password, home)


def _userdel(name: str) -> None:
    import psutil

    try:
        uid = int(_run(["id", "-u", name]).stdout)
    except RuntimeError:
        return
    for p in psutil.process_iter(["uids"]):  # this run's accounts only, by their uid
        if p.info["uids"] and p.info["uids"].real == uid:
            with contextlib.suppress(psutil.Error):
                p.kill()
    for _ in range(50):
        if subprocess.run(["userdel", name], capture_output=True).returncode in (0, 6):
            return
        time.sleep(0.2)  # "user is currently used by process": the kills land


def _start_postgres(base: Path, owner: str) -> Postgres:
    bindir = _postgres_bin()
    assert bindir is not None
    root = base / "pg"
    root.mkdir(mode=0o755)
    data, sock = root / "data", root / "run"
    sock.mkdir(mode=0o755)  # like /var/run/postgresql: peer authentication is the guard
    shutil.chown(root, "postgres", "postgres")
    shutil.chown(sock, "postgres", "postgres")
    pg = Postgres(bindir, data, sock, _free_port())
    as_pg = ["runuser", "-u", "postgres", "--"]
    _run([*as_pg, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--no-sync",
          "--auth-local=peer", "--auth-host=reject", "-E", "UTF8", "--locale=C.UTF-8"],
         cwd="/")
    _run([*as_pg, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "postgres.log"),
          "-w", "-t", "60", "-o",
          f"-k {sock} -p {pg.port} -c listen_addresses='' -c fsync=off", "start"], cwd="/")
    psql = [*as_pg, str(bindir / "psql"), "-X", "-h", str(sock), "-p", str(pg.port),
            "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c"]
    _run([*psql, f'CREATE ROLE "{owner}" LOGIN'], cwd="/")
    _run([*psql, f'CREATE DATABASE {pg.database} OWNER "{owner}"'], cwd="/")
    return pg


def _stop_postgres(pg: Postgres) -> None:
    if pg.data.exists():
        subprocess.run(["runuser", "-u", "postgres", "--", str(pg.bindir / "pg_ctl"), "-D",
                        str(pg.data), "-m", "immediate", "-w", "stop"],
                       capture_output=True, cwd="/", timeout=60)


def _write_configs(base: Path, exchange: Path, hub_cfg: dict[str, Any]) -> tuple[Path, Path]:
    """The accounts' Jupyter config folders: ``etc/all`` (the project's nbgrader config, with
    this run's exchange) for everyone, ``etc/students`` (no formgrader) for student servers,
    as hub/README.md's TLJH steps disable it in the students' environment."""
    everyone, students = base / "etc" / "all", base / "etc" / "students"
    everyone.mkdir(parents=True)
    # no news or update checks from JupyterLab: a classroom may be offline, and so is CI
    (everyone / "jupyter_server_config.d").mkdir()
    (everyone / "jupyter_server_config.d" / "zz-tinyml-edu-offline.json").write_text(json.dumps(
        {"LabApp": {"news_url": None,
                    "check_for_updates_class": "jupyterlab.NeverCheckForUpdate"}}))
    (everyone / "nbgrader_config.py").write_text(
        "# the project's nbgrader settings for every account, with this run's exchange\n"
        f"load_subconfig({str(REPO / 'hub' / 'nbgrader_config.py')!r})\n"
        "c = get_config()  # noqa: F821\n"
        f"c.Exchange.root = {str(exchange)!r}\n")
    server_d = students / "jupyter_server_config.d"
    server_d.mkdir(parents=True)
    (server_d / "zz-tinyml-edu-students.json").write_text(json.dumps({"ServerApp": {
        "jpserver_extensions": {"nbgrader.server_extensions.formgrader": False}}}))
    (students / "labconfig").mkdir()
    (students / "labconfig" / "page_config.json").write_text(json.dumps({"disabledExtensions": {
        "@jupyter/nbgrader:formgrader": True, "@jupyter/nbgrader:create-assignment": True}}))
    hub_dir = base / "hub"
    config = hub_dir / "jupyterhub_config.py"
    config.write_text(HUB_CONFIG.format(**hub_cfg))
    return everyone, students


# The test-local part after the project's snippet. Only what a machine decides: ports (the
# course service on a free one instead of 9999), the authenticator, the spawner, and where the
# exchange is. The grader account is this run's, through $TINYML_EDU_GRADER.
HUB_CONFIG = """\
c = get_config()  # noqa: F821
load_subconfig({snippet!r})  # hub/jupyterhub_config.d/tinyml_edu.py, as TLJH loads it

c.JupyterHub.bind_url = "http://127.0.0.1:{port}"
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.command = [{chp!r}]
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.pid_file = {proxy_pid!r}
c.JupyterHub.db_url = "sqlite:///{hub_dir}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{hub_dir}/jupyterhub_cookie_secret"
c.JupyterHub.cleanup_servers = True
c.JupyterHub.authenticator_class = "pam"
c.Authenticator.allowed_users = set({users!r})
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [{singleuser!r}]
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = {start_timeout}
c.Spawner.http_timeout = {start_timeout}
c.Spawner.environment = {{"JUPYTER_CONFIG_PATH": {students_path!r},
                         "TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "0"}}

# the snippet appended to a lazy list: resolve it, change the course service, set it back
services = c.JupyterHub.services.get_value([])
service = next(s for s in services if s["name"] == "tinyml-edu")
service["url"] = "http://127.0.0.1:{service_port}"
service["environment"]["JUPYTER_CONFIG_PATH"] = {everyone!r}
service["environment"]["TF_ENABLE_ONEDNN_OPTS"] = "0"

# the test's own hand on the hub: creates nothing a class needs, only drives and watches it
services.append({{"name": "live-class-driver", "api_token": {driver_token!r}}})
c.JupyterHub.services = services
c.JupyterHub.load_roles.append({{
    "name": "live-class-driver", "services": ["live-class-driver"],
    "scopes": ["admin:users", "admin:servers", "admin:groups", "list:services",
               "read:services"]}})
"""


@contextlib.contextmanager
def live_class(n_students: int = 3, lessons: tuple[str, ...] = (LESSON,),
               keep: bool = False) -> Iterator[LiveClass]:
    """Stand the class up; tear everything down when the block ends."""
    reason = missing()
    if reason:
        raise RuntimeError(reason)
    blocked = blocked_dirs()
    suffix = secrets.token_hex(3)
    base = Path(tempfile.mkdtemp(prefix=f"tinyml-edu-hub-{suffix}-"))
    base.chmod(0o755)  # the accounts reach their homes and the exchange through it
    (base / "home").mkdir(mode=0o755)
    (base / "hub").mkdir(mode=0o700)
    names = {"instructor": f"ins{suffix}", "grader": f"grader{suffix}"}
    created: list[str] = []
    pg: Postgres | None = None
    klass: LiveClass | None = None
    try:
        def add(name: str) -> Account:
            account = _useradd(name, base / "home" / name)
            created.append(name)
            return account

        instructor = add(names["instructor"])
        grader = add(names["grader"])
        students = [add(f"stu{suffix}{chr(ord('a') + i)}") for i in range(n_students)]
        pg = _start_postgres(base, grader.name)
        exchange = base / "exchange"
        exchange.mkdir()
        exchange.chmod(0o1777)  # as /srv/nbgrader/exchange in hub/README.md

        ports = {k: _free_port() for k in ("port", "hub_port", "proxy_api_port",
                                           "service_port")}
        course = grader.home / "course"
        driver_token = secrets.token_hex(32)
        env = {"PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
               "PYTHONPATH": str(REPO),  # this checkout's tinyml_edu, wherever pip put one
               "LANG": "C.UTF-8", "TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "0",
               "TINYML_EDU_GRADEBOOK_URL": pg.url()}
        everyone, student_etc = _write_configs(base, exchange, dict(
            snippet=str(REPO / "hub" / "jupyterhub_config.d" / "tinyml_edu.py"),
            chp=find_chp(), proxy_pid=str(base / "hub" / "proxy.pid"), hub_dir=base / "hub",
            users=sorted([instructor.name] + [s.name for s in students]),
            singleuser=str(Path(sys.prefix) / "bin" / "jupyterhub-singleuser"),
            start_timeout=int(START_TIMEOUT_S),
            students_path=f"{base / 'etc' / 'students'}:{base / 'etc' / 'all'}",
            everyone=str(base / "etc" / "all"),
            driver_token=driver_token, **ports))
        for folder in (base / "etc", everyone, student_etc):
            for p in [folder, *folder.rglob("*")]:
                p.chmod(0o755 if p.is_dir() else 0o644)
        klass = LiveClass(base, f"http://127.0.0.1:{ports['port']}", instructor, students,
                          grader, course, exchange, pg, base / "hub" / "jupyterhub.log", env,
                          admin_token=driver_token, namespace=bool(blocked), ports=ports)

        hub_env = dict(os.environ, **env, TINYML_EDU_INSTRUCTORS=instructor.name,
                       TINYML_EDU_GRADER=grader.name, TINYML_EDU_USER_ENV=sys.prefix)
        hub_env.pop("JUPYTERHUB_API_TOKEN", None)
        hub_cmd = [sys.executable, "-m", "jupyterhub", "-f",
                   str(base / "hub" / "jupyterhub_config.py")]
        if blocked:
            script = _namespace_script(base / "hub" / "stage", blocked)
            hub_cmd = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                       script + '\nexec "$@"', "hub", *hub_cmd]

        # The course folder, as hub/README.md's step 3: the lessons' sources in the grader's
        # home, `tinyml-edu course init` run as the grader (before the hub: the course
        # service starts in it). Needs the namespace too, so it runs through a short-lived one.
        sources = grader.home / "lessons"
        sources.mkdir()
        for lesson in lessons:
            shutil.copytree(REPO / "lessons" / lesson, sources / lesson,
                            ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        _run(["chown", "-R", f"{grader.name}:{grader.name}", str(sources)])
        init = ["runuser", "-u", grader.name, "--", "env", "-i",
                *[f"{k}={v}" for k, v in dict(env, HOME=str(grader.home)).items()],
                sys.executable, "-m", "tinyml_edu", "course", "init", str(course),
                "--source", str(sources)]
        if blocked:
            init = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                    _namespace_script(base / "hub" / "stage-init", blocked) + '\nexec "$@"',
                    "init", *init]
        _run(init, cwd=str(grader.home))

        with open(klass.hub_log, "wb") as log:
            klass.proc = subprocess.Popen(hub_cmd, cwd=base / "hub", env=hub_env, stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True)
        _wait_hub(klass)
        yield klass
    finally:
        if klass is not None and klass.proc is not None:
            _stop_hub(klass)
        for name in created:
            _userdel(name)
        if pg is not None:
            _stop_postgres(pg)
        if not keep:
            _unmount_all(base)
            shutil.rmtree(base, ignore_errors=True)


def _wait_hub(klass: LiveClass) -> None:
    import requests

    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if klass.proc.poll() is not None:
            raise RuntimeError(f"JupyterHub exited ({klass.proc.returncode}):\n"
                               f"{klass.log_tail()}")
        try:
            r = requests.get(f"{klass.url}/services/{COURSE}/api/status", timeout=5,
                             headers={"Authorization": f"token {klass.admin_token}"})
            # the course service answers (403: it refuses the driver, which has no access)
            if r.status_code in (200, 403):
                return
        except requests.RequestException:
            pass
        time.sleep(1)
    raise RuntimeError(f"JupyterHub or its course service did not start:\n{klass.log_tail()}")


def _stop_hub(klass: LiveClass) -> None:
    proc = klass.proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # the hub stops its servers, services and proxy
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    pid_file = klass.base / "hub" / "proxy.pid"
    if pid_file.exists():  # a proxy the hub did not stop (it was killed)
        with contextlib.suppress(ValueError, ProcessLookupError, PermissionError):
            os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)


def _unmount_all(base: Path) -> None:
    """Mounts under ``base`` live only in the hub's namespace; this is for a kept folder
    whose namespace is gone, and a no-op otherwise."""
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[1] for line in mounts if line.split()[1].startswith(str(base))]
    for point in sorted(points, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)
