# Configuration of notebooks-service for the demo Hub (see notebooks_service/demo/__init__.py).
from notebooks_service.demo import IMAGES, WORKSPACE_MEMBERS

c = get_config()  # noqa: F821
c.NotebooksService.images = IMAGES
c.NotebooksService.workspace_policy_class = "static"
c.NotebooksService.workspace_members = WORKSPACE_MEMBERS
