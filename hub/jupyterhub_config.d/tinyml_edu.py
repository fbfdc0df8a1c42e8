# tinyml-edu on JupyterHub: the course's groups and roles, and one course service (a shared
# JupyterLab with nbgrader's formgrader, run as the grader account) for the instructors.
#
# The Littlest JupyterHub: copy to /opt/tljh/config/jupyterhub_config.d/ and `tljh-config
# reload hub`. Zero to JupyterHub: values.yaml carries this same text in hub.extraConfig
# (tests/test_hub.py keeps the two identical). Settings come from the hub's environment:
#
#   TINYML_EDU_INSTRUCTORS        comma-separated hub user names who grade (formgrader access)
#   TINYML_EDU_GRADEBOOK_URL      postgresql://... for the gradebook (default: SQLite in the
#                                 course folder, fine for one grader at a time)
#   TINYML_EDU_COURSE_SERVICE_URL Kubernetes: where the course service pod listens; unset on
#                                 TLJH, where the hub starts the service itself
#   TINYML_EDU_COURSE_TOKEN       Kubernetes: the service's API token (from a Secret)
#   TINYML_EDU_USER_ENV           TLJH: the user environment (default /opt/tljh/user)
import json
import os

c = get_config()  # noqa: F821 (JupyterHub provides get_config)

# nbgrader finds a course by these names: the service is called like the course, instructors
# are in formgrade-<course>, students in nbgrader-<course> (nbgrader adds them when the
# instructor adds a student in the formgrader). The grader account is a system account only,
# never a hub user in formgrade-<course>: with a first-use login (TLJH's default) anyone could
# claim that name and with it the formgrader.
COURSE = "tinyml-edu"
GRADER = f"grader-{COURSE}"
INSTRUCTORS = [u.strip() for u in os.environ.get("TINYML_EDU_INSTRUCTORS", "").split(",")
               if u.strip()]

c.JupyterHub.load_groups.update({
    f"formgrade-{COURSE}": {"users": list(INSTRUCTORS)},
    f"nbgrader-{COURSE}": {"users": list(INSTRUCTORS)},
})
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
    c.JupyterHub.services.append({
        "name": COURSE,
        "url": "http://127.0.0.1:9999",
        "command": [f"{user_env}/bin/jupyterhub-singleuser",
                    f"--ServerApp.tornado_settings={json.dumps(FRAME_SELF)}"],
        "user": GRADER,
        "cwd": f"/home/{GRADER}/course",
        "environment": service_env,
        "display": True,
        "oauth_no_confirm": True,
    })
