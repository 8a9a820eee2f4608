"""Names derived from workspaces and images: one rule, one place.

A named server must be a JupyterHub 6 "safe slug": 1-30 characters of
``[a-z0-9]`` and single hyphens, starting with a letter and ending with a
letter or digit. A workspace must make ``ws-<workspace>`` a Kubernetes
namespace name (a DNS-1123 label of at most 63 characters).
"""

import hashlib
import re

from .errors import InvalidRequest

SERVER_NAME_MAX_LENGTH = 30
#: the user_options a workspace server is started with; the Hub-side guard refuses any other key
USER_OPTION_KEYS = ("workspace", "image", "resource_class")
NAMESPACE_PREFIX = "ws-"
DEFAULT_NAMESPACE_TEMPLATE = NAMESPACE_PREFIX + "{workspace}"

# labels and annotations on notebook pods: written on the Hub side, read by kube.py
LABEL_PREFIX = "notebooks-service.jupyter.org/"
WORKSPACE_LABEL = LABEL_PREFIX + "workspace"
IMAGE_LABEL = LABEL_PREFIX + "image"
IMAGE_REF_ANNOTATION = LABEL_PREFIX + "image-ref"
USER_LABEL = LABEL_PREFIX + "user"
SERVER_LABEL = LABEL_PREFIX + "server"
RESOURCE_CLASS_LABEL = LABEL_PREFIX + "resource-class"
WORKSPACE_MAX_LENGTH = 63 - len(NAMESPACE_PREFIX)
# matched whole (fullmatch): '$' would let a trailing newline through
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_SAFE_SLUG = re.compile(r"[a-z](?:-?[a-z0-9])*")
_PLAIN_PART = re.compile(r"[a-z][a-z0-9]*")
_HASH_LENGTH = 8


def is_valid_workspace(workspace: str) -> bool:
    """True if ``ws-<workspace>`` is a valid Kubernetes namespace name."""
    return len(workspace) <= WORKSPACE_MAX_LENGTH and bool(_DNS_LABEL.fullmatch(workspace))


def check_workspace(workspace: str) -> str:
    """Return the workspace, or raise a 400 saying what a workspace name must look like."""
    if not is_valid_workspace(workspace):
        raise InvalidRequest(
            f"Invalid workspace name {workspace[:80]!r}: use at most {WORKSPACE_MAX_LENGTH} "
            "lowercase letters, digits and hyphens, starting and ending with a letter or digit"
        )
    return workspace


def is_valid_server_name(name: str) -> bool:
    """The JupyterHub 6 rule for new named servers."""
    return len(name) <= SERVER_NAME_MAX_LENGTH and bool(_SAFE_SLUG.fullmatch(name))


def server_name(workspace: str, image: str) -> str:
    """The named-server name for (workspace, image): deterministic and valid for the Hub.

    ``alpha`` + ``python`` gives ``alpha-python``. Whenever that plain form
    would be ambiguous (a hyphen in either part, so ``a-b``/``c`` and ``a``/``b-c``
    would meet), invalid or too long, the name is a readable prefix plus a hash
    of the exact pair, e.g. ``my-ws-jupyter-sci-3f2a9c1b``.
    """
    plain = f"{workspace}-{image}"
    if _PLAIN_PART.fullmatch(workspace) and _PLAIN_PART.fullmatch(image) and len(plain) <= SERVER_NAME_MAX_LENGTH:
        return plain
    digest = hashlib.sha256(f"{workspace}\0{image}".encode()).hexdigest()[:_HASH_LENGTH]
    readable = re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-")
    readable = readable.lstrip("0123456789-") or "s"
    readable = readable[: SERVER_NAME_MAX_LENGTH - _HASH_LENGTH - 1].rstrip("-")
    return f"{readable}-{digest}"


def display_name(workspace: str, image: str) -> str:
    """What people read: ``<workspace>/<image>``."""
    return f"{workspace}/{image}"


def namespace(workspace: str, template: str = DEFAULT_NAMESPACE_TEMPLATE) -> str:
    """The Kubernetes namespace of a workspace's notebook pods."""
    return template.format(workspace=workspace)


def label_value(value: str) -> str:
    """A Kubernetes label value (<= 63 chars of [A-Za-z0-9._-], alphanumeric ends) naming ``value``."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", value).strip("-._")
    if cleaned == value and len(value) <= 63:
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:_HASH_LENGTH]
    return f"{cleaned[: 63 - _HASH_LENGTH - 1].rstrip('-._')}-{digest}".lstrip("-")


def pod_name(user: str, server_name: str) -> str:
    """The pod of ``user``'s server: the Hub-side placement names it, and the service can
    name it too (to find the events of a pod that is gone). ``jupyter-<user>--<server>`` when
    that is a DNS label; else a readable prefix and a hash of both names."""
    plain = f"jupyter-{user}--{server_name}"
    if len(plain) <= 63 and _DNS_LABEL.fullmatch(plain):
        return plain
    digest = hashlib.sha256(f"{user}\0{server_name}".encode()).hexdigest()[:_HASH_LENGTH]
    cleaned = re.sub(r"[^a-z0-9-]+", "-", f"{user}--{server_name}".lower()).strip("-")
    return f"jupyter-{cleaned[: 63 - len('jupyter-') - _HASH_LENGTH - 1].rstrip('-')}-{digest}"
