"""The helm chart rendered offline with Helm's own engine (helm-python-sdk), for test_chart and test_z2jh."""

import os

import helm_python as helm
import kubernetes_validate
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHART = os.path.join(ROOT, "helm-chart", "notebooks-service")
EXAMPLES = os.path.join(ROOT, "helm-chart", "examples")
#: the real z2jh chart, unmodified
Z2JH = os.path.join(os.path.dirname(ROOT), "shared", "peers", "z2jh-4.4.0")
KUBERNETES = kubernetes_validate.latest_version()
RELEASE, NAMESPACE = "notebooks-service", "jupyter"


def load_values(path: str | None) -> dict:
    if path is None:
        return {}
    with open(path) as f:
        return yaml.safe_load(f) or {}


def render(values: str | dict | None) -> tuple[list[dict], str]:
    """The manifests and NOTES.txt a release of the chart would apply and print (values: a file or a dict)."""
    with helm.Chart.load(CHART) as chart:
        values = values if isinstance(values, dict) else load_values(values)
        files = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    notes = files.pop(next(k for k in files if k.endswith("NOTES.txt")), "")
    docs = [d for text in files.values() for d in yaml.safe_load_all(text) if d]
    return docs, notes


def one(docs: list[dict], kind: str) -> dict:
    [doc] = [d for d in docs if d["kind"] == kind]
    return doc
