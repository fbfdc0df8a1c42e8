# tinyml-edu on JupyterHub: the course's groups and roles, and one course service (a shared
# JupyterLab with nbgrader's formgrader, run as the grader account) for the instructors.
#
# The Littlest JupyterHub: copy to /opt/tljh/config/jupyterhub_config.d/ and `tljh-config
# reload hub`. Zero to JupyterHub: values.yaml carries this same text in hub.extraConfig
# (tests/test_hub.py keeps the two identical). Settings come from the hub's environment:
#
#   TINYML_EDU_INSTRUCTORS        comma-separated hub user names who grade (formgrader access)
#   TINYML_EDU_GRADEBOOK_URL      postgresql+psycopg://... for the gradebook (default: SQLite in
#                                 the course folder, fine for one grader at a time)
#   TINYML_EDU_COURSE_SERVICE_URL Kubernetes: where the course service pod listens; unset on
#                                 TLJH, where the hub starts the service itself
#   TINYML_EDU_COURSE_TOKEN       Kubernetes: the service's API token (from a Secret)
#   TINYML_EDU_USER_ENV           TLJH: the user environment (default /opt/tljh/user)
#   TINYML_EDU_GRADER             the grader's system account (default grader-tinyml-edu)
import json
import os
import pwd

c = get_config()  # noqa: F821 (JupyterHub provides get_config)

# nbgrader finds a course by these names: the service is called like the course, instructors
# are in formgrade-<course>, students in nbgrader-<course> (nbgrader adds them when the
# instructor adds a student in the formgrader). The course service runs as the grader account,
# and nbgrader's JupyterHub plugin there asks the hub for that account's groups (it is the
# service's JUPYTERHUB_USER): without a hub user of that name in formgrade-<course>, every
# formgrader action fails with a 404 from the hub. So the grader is a hub user in that group, as
# in nbgrader's JupyterHub demo, and one nobody can log in as (below): with a first-use login
# (TLJH's default) anyone could otherwise claim the name and with it the formgrader.
COURSE = "tinyml-edu"
GRADER = os.environ.get("TINYML_EDU_GRADER", f"grader-{COURSE}")
INSTRUCTORS = [u.strip() for u in os.environ.get("TINYML_EDU_INSTRUCTORS", "").split(",")
               if u.strip()]

c.JupyterHub.load_groups.update({
    f"formgrade-{COURSE}": {"users": [*INSTRUCTORS, GRADER]},
    f"nbgrader-{COURSE}": {"users": list(INSTRUCTORS)},
})


def _no_login_as_grader(authenticator, handler, authentication):
    """Refuse the grader's name whatever the password (the hub's login page and API)."""
    if authentication and authentication.get("name") == GRADER:
        authenticator.log.warning("refused a login as %s, the course's grader account", GRADER)
        return None
    return authentication


c.Authenticator.post_auth_hook = _no_login_as_grader
c.JupyterHub.load_roles.extend([
    {   # instructors open the course service (the formgrader)
        "name": f"formgrade-{COURSE}",
        "groups": [f"formgrade-{COURSE}"],
        "scopes": [f"access:services!service={COURSE}", "list:services",
                   f"read:services!service={COURSE}"],
    },
    {   # students' assignment list finds the course
        "name": f"nbgrader-{COURSE}",
        "groups": [f"nbgrader-{COURSE}"],
        "scopes": ["list:services", f"read:services!service={COURSE}"],
    },
    {   # the service reads who is in which course and enrols students (nbgrader's
        # JupyterHubAuthPlugin creates nbgrader-<course> and adds users to it)
        "name": f"{COURSE}-course-service",
        "services": [COURSE],
        "scopes": ["admin:groups", "list:users", "read:users:name", "read:users:groups"],
    },
    {   # a user's server asks the hub for its owner's groups with its own token
        "name": "server",
        "scopes": ["inherit"],
    },
])

# JupyterHub >= 4.1 forbids framing single-user servers (CSP frame-ancestors 'none'), and the
# formgrader panel in JupyterLab is an iframe: it stays blank (nbgrader#1870). Allow framing by
# the same origin on the course service only, where only instructors go; students' servers keep
# JupyterHub's default. With JupyterHub.enable_subdomains this is safe; without it, a page
# served from a student's server could frame the formgrader (see hub/README.md).
FRAME_SELF = {"headers": {"Content-Security-Policy": "frame-ancestors 'self'"}}
service_env = {"JUPYTERHUB_DEFAULT_URL": "/lab", "TF_CPP_MIN_LOG_LEVEL": "2"}
if os.environ.get("TINYML_EDU_GRADEBOOK_URL"):
    service_env["TINYML_EDU_GRADEBOOK_URL"] = os.environ["TINYML_EDU_GRADEBOOK_URL"]

if os.environ.get("TINYML_EDU_COURSE_SERVICE_URL"):
    # Kubernetes: the service runs in its own pod (hub/z2jh/course-service.yaml), which sets
    # the frame-ancestors header itself; the hub only routes to it and knows its token.
    c.JupyterHub.services.append({
        "name": COURSE,
        "url": os.environ["TINYML_EDU_COURSE_SERVICE_URL"],
        "api_token": os.environ["TINYML_EDU_COURSE_TOKEN"],
        "display": True,
        "oauth_no_confirm": True,
    })
else:
    # TLJH: the hub (running as root) starts the service as the grader's system account, in
    # the course folder made by `tinyml-edu course init` (its nbgrader_config.py is read there).
    user_env = os.environ.get("TINYML_EDU_USER_ENV", "/opt/tljh/user")
    try:
        grader_home = pwd.getpwnam(GRADER).pw_dir
    except KeyError:  # not made yet (hub/README.md's step 3)
        grader_home = f"/home/{GRADER}"
    # nbgrader runs `alembic` and instructors type `nbgrader`/`tinyml-edu` in the service's
    # terminal: the user environment's programs on PATH (the hub's own PATH lacks them), and a
    # terminal that keeps it (a login shell would reset PATH from /etc/profile).
    service_env["PATH"] = f"{user_env}/bin:/usr/local/bin:/usr/bin:/bin"
    c.JupyterHub.services.append({
        "name": COURSE,
        "url": "http://127.0.0.1:9999",
        "command": [f"{user_env}/bin/jupyterhub-singleuser",
                    f"--ServerApp.tornado_settings={json.dumps(FRAME_SELF)}",
                    '--ServerApp.terminado_settings={"shell_command": ["/bin/bash"]}'],
        "user": GRADER,
        "cwd": f"{grader_home}/course",
        "environment": service_env,
        "display": True,
        "oauth_no_confirm": True,
    })
