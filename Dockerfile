# notebooks-service images. Targets:
#   service  the service itself (default): slim, non-root, no build tools
#   hub      the z2jh hub image with notebooks-service added, for the Hub-side guard
# Build with chartpress (helm-chart/chartpress.yaml) or: docker build --target service .

ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm
# z2jh 4.4.0's hub (JupyterHub 5.5.0, KubeSpawner 7.0.0), with JupyterHub upgraded to 5.5.4
# (locks/hub-image.in): 5.5.3 fixed GHSA-hx46-2cv3-mh6g and four more advisories. `make test` runs
# its second pass on these (locks/jh5.in).
ARG HUB_IMAGE=quay.io/jupyterhub/k8s-hub:4.4.0

# ---- build: wheels and a virtualenv; nothing of this stage but /opt/venv and /wheels ships.
# Every dependency comes from a lock (hashes checked), as in `make test`: locks/service.txt here,
# locks/hub-image.txt in the hub stage; the wheel itself is installed without dependencies.
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY locks/build.txt locks/service.txt ./locks/
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --require-hashes -r locks/service.txt
COPY pyproject.toml setup.cfg README.rst ./
COPY notebooks_service ./notebooks_service
COPY templates ./templates
RUN PIP_CONSTRAINT=locks/build.txt pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && /opt/venv/bin/pip install --no-cache-dir --no-deps /wheels/*.whl \
    && /opt/venv/bin/pip uninstall --yes pip

# ---- service: the same Python, the virtualenv, a non-root user
FROM ${PYTHON_IMAGE} AS service
RUN useradd --no-create-home --uid 1000 --user-group notebooks
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER 1000:1000
EXPOSE 10101
ENTRYPOINT ["notebooks-service"]

# ---- hub: JupyterHub's z2jh image, plus notebooks_service.hubside for the guard
FROM ${HUB_IMAGE} AS hub
COPY --from=build /wheels /tmp/wheels
COPY locks/hub-image.txt /tmp/hub-image.txt
USER 0
# the lock: z2jh's own pins, JupyterHub 5.5.4 and PyJWT 2.15+ (tests/test_chart.py checks it)
RUN pip install --no-cache-dir --require-hashes -r /tmp/hub-image.txt \
    && pip install --no-cache-dir --no-deps /tmp/wheels/*.whl \
    && rm -rf /tmp/wheels /tmp/hub-image.txt
USER 1000

# the default target, last: the service
FROM service
