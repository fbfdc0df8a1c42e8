# nbgrader settings every account on the hub shares: students, instructors and the course
# service. TLJH: /opt/tljh/user/etc/jupyter/nbgrader_config.py. Zero to JupyterHub:
# /etc/jupyter/nbgrader_config.py, mounted from values.yaml's singleuser.extraFiles (tests keep
# the two identical). The course folder's own nbgrader_config.py (`tinyml-edu course init`)
# adds the course settings on top for the grader.
from nbgrader.auth import JupyterHubAuthPlugin

c = get_config()  # noqa: F821 (nbgrader provides get_config)

# One shared folder for releasing and collecting (world-writable with the sticky bit: mode
# 1777). Each course gets its own subfolder, so a second course can share the hub.
c.Exchange.root = "/srv/nbgrader/exchange"
c.Exchange.path_includes_course = True
# Students see the courses whose nbgrader-<course> group they are in; instructors those of
# their formgrade-<course> groups.
c.Authenticator.plugin_class = JupyterHubAuthPlugin
c.NbGrader.course_titles = {"tinyml-edu": "TinyML: from sensor data to a model on the board"}
# A student's Validate runs here with nbgrader's default of 30 s a cell; the lessons' training
# cells take up to a minute, more on a busy hub. The course folder's grading limit (600 s,
# tinyml_edu.course.config) for Validate too; nbgrader reads both names (nbgrader#1463).
c.Execute.timeout = 600
c.ExecutePreprocessor.timeout = 600
