"""Kubernetes NetworkPolicy semantics, for checking rendered policies: may pod A open port P on pod B?

A connection is allowed when the source's egress and the destination's ingress
both allow it. For each direction: if no policy of that type selects the pod,
everything is allowed; otherwise at least one rule of one selecting policy must
match (peers and ports). Peers by pod and namespace labels only: ``ipBlock``
peers never match pods here, as on network plugins (e.g. Cilium) that apply
them to traffic leaving the cluster only, so nothing passes by IP range alone.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    labels: dict = field(default_factory=dict)
    ports: dict = field(default_factory=dict)  # container port name -> number


def _matches(selector: dict | None, labels: dict) -> bool:
    if selector is None:
        return False
    if set(selector) - {"matchLabels"}:
        raise NotImplementedError(f"selector {selector}: only matchLabels is evaluated here")
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


def namespace_labels(namespace: str) -> dict:
    # the label Kubernetes puts on every namespace; the examples label none
    return {"kubernetes.io/metadata.name": namespace}


def _peer_matches(peer: dict, pod: Pod, policy_namespace: str) -> bool:
    if "ipBlock" in peer:
        return False
    pods, namespaces = peer.get("podSelector"), peer.get("namespaceSelector")
    if namespaces is None and pod.namespace != policy_namespace:
        return False  # a podSelector alone means the policy's own namespace
    if namespaces is not None and not _matches(namespaces, namespace_labels(pod.namespace)):
        return False
    return pods is None or _matches(pods, pod.labels)


def _port_matches(rule_ports: list | None, port: int, target: Pod | None) -> bool:
    if not rule_ports:
        return True
    for p in rule_ports:
        if p.get("protocol", "TCP") != "TCP":
            continue
        wanted = p.get("port")
        if wanted is None or wanted == port:
            return True
        if isinstance(wanted, str) and target is not None and target.ports.get(wanted) == port:
            return True
    return False


def _allowed(policies: list[dict], pod: Pod, kind: str, peer: Pod, port: int, target: Pod) -> bool:
    key, peers_key = ("ingress", "from") if kind == "Ingress" else ("egress", "to")
    selecting = [
        p
        for p in policies
        if p["metadata"].get("namespace") == pod.namespace
        and _matches(p["spec"]["podSelector"], pod.labels)
        and kind in p["spec"].get("policyTypes", ["Ingress"])
    ]
    if not selecting:
        return True
    for policy in selecting:
        for rule in policy["spec"].get(key) or []:
            if not _port_matches(rule.get("ports"), port, target):
                continue
            peers = rule.get(peers_key)
            if not peers or any(_peer_matches(p, peer, policy["metadata"]["namespace"]) for p in peers):
                return True
    return False


def may_connect(policies: list[dict], source: Pod, destination: Pod, port: int) -> bool:
    """Whether ``source`` may open a TCP connection to ``destination`` on ``port``."""
    return _allowed(policies, source, "Egress", destination, port, destination) and _allowed(
        policies, destination, "Ingress", source, port, destination
    )
