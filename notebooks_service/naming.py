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
# a label value: alphanumeric ends, [A-Za-z0-9._-] between (empty is valid: the default server)
_LABEL = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)?")
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
    """A Kubernetes label value (<= 63 chars of [A-Za-z0-9._-], alphanumeric ends) naming ``value``, injectively.

    KubeSpawner's ``safe_slug`` rule: a value that is a valid label and has no ``--`` is
    kept as it is; any other gets a readable prefix, ``--`` and a hash of the whole value.
    A kept value never contains ``--`` and a hashed one always does, so no user can pick a
    name that equals another's hashed label (``alice-example.org-7a64adf2`` is kept, and
    ``alice@example.org`` becomes ``alice-example.org--<hash>``).
    """
    if "--" not in value and len(value) <= 63 and _LABEL.fullmatch(value):
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:_HASH_LENGTH]
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", value).strip("-._")
    cleaned = cleaned[: 63 - _HASH_LENGTH - 2].rstrip("-._") or "x"
    return f"{cleaned}--{digest}"


def pod_name(user: str, server_name: str) -> str:
    """The pod of ``user``'s server: the Hub-side placement names it, and the service can
    name it too (to find the events of a pod that is gone). ``jupyter-<user>--<server>`` when
    that is a DNS label and the user's name cannot blur the ``--`` (no ``--`` in it, no ``-``
    at its end: server names never have ``--``); else a readable prefix, ``---`` and a hash of
    both names. A plain name never holds ``---`` and a hashed one always does: no two meet."""
    plain = f"jupyter-{user}--{server_name}"
    if len(plain) <= 63 and _DNS_LABEL.fullmatch(plain) and "--" not in user and not user.endswith("-"):
        return plain
    digest = hashlib.sha256(f"{user}\0{server_name}".encode()).hexdigest()[:_HASH_LENGTH]
    cleaned = re.sub(r"[^a-z0-9]+", "-", f"{user} {server_name}".lower()).strip("-")
    cleaned = cleaned[: 63 - len("jupyter-") - _HASH_LENGTH - 3].rstrip("-") or "x"
    return f"jupyter-{cleaned}---{digest}"
