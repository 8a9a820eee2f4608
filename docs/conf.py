# The notebooks-service manual: `make docs` (warnings are errors), built by `make test` too.
project = "notebooks-service"
author = "the notebooks-service developers"
copyright = "2026, the notebooks-service developers"  # noqa: A001 (Sphinx's name)

extensions = [
    "sphinx.ext.autodoc",
    # the configuration reference, from the traits themselves (as JupyterHub and KubeSpawner document theirs)
    "autodoc_traits",
]
exclude_patterns = ["_build", "_*.rst"]
root_doc = "index"
autodoc_member_order = "bysource"
nitpicky = False

html_theme = "pydata_sphinx_theme"
html_title = "notebooks-service"
html_theme_options = {"navigation_with_keys": False, "show_toc_level": 2}
