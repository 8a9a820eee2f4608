"""notebooks-service: workspace-scoped notebook servers through JupyterHub."""

__version__ = "0.1.0"
