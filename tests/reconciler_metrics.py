"""The reconciler's counters, read from its metrics port (``hub.reconciler_metrics``)."""

import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def reconciler_counts(hub) -> dict[tuple[str, tuple], float]:
    """The reconciler's counters: (sample name, labels) -> value."""
    with urllib.request.urlopen(hub.reconciler_metrics, timeout=10) as r:
        text = r.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.endswith("_total")
    }


def member_checks(hub) -> float:
    """How many checks found an owner or recipient a member so far."""
    return reconciler_counts(hub).get(("notebooks_service_membership_checks_total", (("outcome", "member"),)), 0)
