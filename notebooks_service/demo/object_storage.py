"""The demo's object storage: moto's S3 server on 127.0.0.1, one bucket per demo workspace.

The demo Hub runs it as a managed service (``python -m notebooks_service.demo.object_storage
--port N``), so it starts and stops with the rest. Each bucket is named as the service's
``WorkspacePlacement.s3_bucket_template`` names it and holds a README, so that an alpha
server shows something at ``s3/`` at once. moto keeps everything in memory: what is put
there is gone when the demo stops (the workspace folders, on disk, stay).
"""

import argparse
import logging
import signal
import sys
import threading
from urllib.parse import urlsplit

from . import S3_BUCKET_TEMPLATE, WORKSPACES

#: what the demo's S3 is given; it checks no signature (on Kubernetes: the workspace's own identity)
DEMO_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo", "AWS_DEFAULT_REGION": "us-east-1"}

README = """This is the {workspace} workspace's bucket, {bucket}, in the demo's local S3 (moto).
Every member's {workspace} server shows it in s3/ of the file browser. Whatever is put here
is gone when the demo stops.
"""


def hub_service(endpoint_url: str) -> dict:
    """Its entry in the demo Hub's c.JupyterHub.services: the Hub starts it and stops it."""
    port = urlsplit(endpoint_url).port
    return {"name": "object-storage", "command": [sys.executable, "-m", __name__, f"--port={port}"]}


def client(endpoint_url: str):
    """An S3 client of the demo's storage (as the demo's servers reach it)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=DEMO_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DEMO_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=DEMO_CREDENTIALS["AWS_DEFAULT_REGION"],
        config=Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 1}),
    )


def filled(endpoint_url: str) -> bool:
    """Whether the storage answers, with every workspace's README in place (what fill() puts last)."""
    from botocore.exceptions import BotoCoreError, ClientError

    s3 = client(endpoint_url)
    try:
        for workspace in WORKSPACES:
            s3.head_object(Bucket=S3_BUCKET_TEMPLATE.format(workspace=workspace), Key="README.md")
    except (BotoCoreError, ClientError):
        return False
    return True


def fill(endpoint_url: str) -> None:
    """A bucket with a README per workspace."""
    s3 = client(endpoint_url)
    for workspace in WORKSPACES:
        bucket = S3_BUCKET_TEMPLATE.format(workspace=workspace)
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="README.md", Body=README.format(workspace=workspace, bucket=bucket).encode())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request in the Hub's output

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())  # the Hub stops its services with SIGTERM
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)
    server.start()
    try:
        fill(f"http://127.0.0.1:{args.port}")
        stop.wait()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
