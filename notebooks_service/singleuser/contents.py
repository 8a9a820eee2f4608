"""One file browser over several contents managers: the home at the root, the workspace's bucket at ``s3/``.

The piece of hybridcontents (viaduct-ai/hybridcontents 0.4.0, Apache-2.0) an image needs, kept here
because that package's metadata asks for its own test tools (notebook[test]: selenium, hatch,
pre-commit...) and so cannot be a plain dependency. Each top-level folder named in
``manager_classes`` is served by its own manager; everything else by the root manager (key ``""``).
Only synchronous managers (LargeFileManager, s3contents), as hybridcontents.
"""

from __future__ import annotations

import posixpath
from datetime import datetime, timezone

from jupyter_server.services.contents.manager import ContentsManager
from tornado.web import HTTPError
from traitlets import Dict, Instance, default

# the date hybridcontents gives the mount folders, which have none of their own
_EPOCH = datetime.fromtimestamp(0, timezone.utc)


def normalize(path: str) -> str:
    """The API path without its slashes; ``..`` above the root is a 404, as in any manager."""
    normalized = posixpath.normpath(path.strip("/"))
    if normalized == ".":
        return ""
    if normalized == ".." or normalized.startswith("../"):
        raise HTTPError(404, f"Path outside root: {path}")
    return normalized


def folder_model(path: str) -> dict:
    return {
        "name": path.rsplit("/", 1)[-1],
        "path": path,
        "type": "directory",
        "writable": True,
        "created": _EPOCH,
        "last_modified": _EPOCH,
        "content": None,
        "format": None,
        "mimetype": None,
    }


def with_prefix(prefix: str, model: dict) -> dict:
    """The model as the whole file browser names it (``s3/x.ipynb``, not ``x.ipynb``), contents too."""
    if prefix:
        model["path"] = f"{prefix}/{model['path']}".strip("/")
        if model.get("type") == "directory" and isinstance(model.get("content"), list):
            for child in model["content"]:
                with_prefix(prefix, child)
    return model


class MountedContentsManager(ContentsManager):
    """The root manager's files, with other managers' files under top-level folders (mounts)."""

    manager_classes = Dict(
        config=True,
        help="""Folder name -> ContentsManager class; ``""`` is the root (the home's files).
        E.g. ``{"": LargeFileManager, "s3": S3ContentsManager}``.""",
    )
    manager_kwargs = Dict(config=True, help="Folder name -> the keyword arguments its manager is built with.")
    managers = Dict(value_trait=Instance(ContentsManager), help="Folder name -> the manager built for it.")

    @default("managers")
    def _build_managers(self):
        for name in self.manager_classes:
            if "/" in name.strip("/"):
                raise ValueError(f"a mount is a top-level folder, not {name!r}")
        return {
            name.strip("/"): cls(parent=self, log=self.log, **self.manager_kwargs.get(name, {}))
            for name, cls in self.manager_classes.items()
        }

    def resolve(self, path: str) -> tuple[str, ContentsManager, str]:
        """(mount, its manager, the path inside it)."""
        path = normalize(path)
        first, _, rest = path.partition("/")
        if first and first in self.managers:
            return first, self.managers[first], rest
        if "" in self.managers:
            return "", self.managers[""], path
        raise HTTPError(404, f"No such file or directory: {path}")

    def _call(self, method: str, path: str, *args, **kwargs):
        _, manager, inner = self.resolve(path)
        return getattr(manager, method)(inner, *args, **kwargs)

    # what needs no model rewriting
    def dir_exists(self, path):
        return self._call("dir_exists", path)

    def is_hidden(self, path):
        return self._call("is_hidden", path)

    def file_exists(self, path=""):
        return self._call("file_exists", path)

    def exists(self, path):
        return self._call("exists", path)

    def get_kernel_path(self, path, model=None):
        return self._call("get_kernel_path", path, model)

    def create_checkpoint(self, path):
        return self._call("create_checkpoint", path)

    def list_checkpoints(self, path):
        return self._call("list_checkpoints", path)

    def restore_checkpoint(self, checkpoint_id, path):
        _, manager, inner = self.resolve(path)
        return manager.restore_checkpoint(checkpoint_id, inner)

    def delete_checkpoint(self, checkpoint_id, path):
        _, manager, inner = self.resolve(path)
        return manager.delete_checkpoint(checkpoint_id, inner)

    # models name the whole path; the root lists the mounts beside the home's files
    def get(self, path, content=True, type=None, format=None):
        if normalize(path) == "" and "" not in self.managers:
            model = folder_model("")
            if content:
                model.update(format="json", content=[folder_model(name) for name in self.managers])
            return model
        prefix, manager, inner = self.resolve(path)
        model = with_prefix(prefix, manager.get(inner, content=content, type=type, format=format))
        if not normalize(path) and content:
            model["content"].extend(folder_model(name) for name in self.managers if name)
        return model

    def save(self, model, path):
        prefix, manager, inner = self.resolve(path)
        if not inner and prefix:
            raise HTTPError(400, f"{prefix}/ is a mount, not a file")
        return with_prefix(prefix, manager.save(model, inner))

    def delete(self, path):
        prefix, manager, inner = self.resolve(path)
        if prefix and not inner:
            raise HTTPError(400, f"{prefix}/ is a mount and cannot be deleted")
        return manager.delete(inner)

    def rename(self, old_path, new_path):
        old_prefix, old_manager, old_inner = self.resolve(old_path)
        new_prefix, new_manager, new_inner = self.resolve(new_path)
        if (old_prefix and not old_inner) or (new_prefix and not new_inner):
            raise HTTPError(400, "a mount cannot be moved or renamed")
        if old_manager is new_manager:
            return old_manager.rename(old_inner, new_inner)
        # across mounts: copy, then delete (a folder cannot be moved this way, as in hybridcontents)
        model = old_manager.get(old_inner)
        if model["type"] == "directory":
            raise HTTPError(400, "a folder cannot be moved between the home and a mount")
        new_manager.save(model, new_inner)
        old_manager.delete(old_inner)
        return None
