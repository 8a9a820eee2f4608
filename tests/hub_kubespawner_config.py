# The test Hub on KubeSpawner, against the fake Kubernetes API (tests/fake_kubernetes.py) over HTTP.
# KubeSpawner finds the fake through KUBECONFIG; the pods it creates "run" at 127.0.0.1 on the fake's
# own port, which answers the Hub's is-it-up check (any answer below 500 will do).
import os

load_subconfig(os.path.join(os.path.dirname(__file__), "hub_test_config.py"))  # noqa: F821

c = get_config()  # noqa: F821
env = os.environ
c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
c.KubeSpawner.k8s_api_host = env["NOTEBOOKS_TEST_KUBE_URL"]
c.KubeSpawner.namespace = "jupyter"  # the Hub's; the placement moves each pod to its workspace's
c.KubeSpawner.port = int(env["NOTEBOOKS_TEST_KUBE_PORT"])
c.KubeSpawner.volumes = [{"name": "scratch", "emptyDir": {}}]
c.KubeSpawner.volume_mounts = [{"name": "scratch", "mountPath": "/scratch"}]
c.KubeSpawner.start_timeout = 30
c.KubeSpawner.http_timeout = 30
