"""The seed's approach, as a Lambda handler: what ossnap's `register` replaces.

boto3 resolves the credentials, requests_aws4auth signs (service `es`), requests sends. It does
what `register` does on an already-registered repository: read the repository, and register it
only when its settings differ. Used only as the baseline of `make bench`.
"""
import os

import boto3
import requests
from requests_aws4auth import AWS4Auth

SESSION = boto3.Session()
ENDPOINT = os.environ["OPENSEARCH_ENDPOINT"].rstrip("/")
REGION = os.environ["AWS_REGION"]
REPOSITORY = os.environ.get("SNAPSHOT_REPOSITORY", "ossnap")


def handler(event, context):
    credentials = SESSION.get_credentials()
    auth = AWS4Auth(
        credentials.access_key,
        credentials.secret_key,
        REGION,
        "es",
        session_token=credentials.token,
    )
    wanted = {
        "type": "s3",
        "settings": {
            "bucket": os.environ["SNAPSHOT_BUCKET"],
            "base_path": os.environ["SNAPSHOT_BASE_PATH"],
            "region": REGION,
            "role_arn": os.environ["SNAPSHOT_ROLE_ARN"],
        },
    }
    current = requests.get(f"{ENDPOINT}/_snapshot/{REPOSITORY}", auth=auth, timeout=30)
    if current.ok and current.json().get(REPOSITORY) == wanted:
        return {"repository": REPOSITORY, "status": "unchanged", "verified_nodes": None}
    put = requests.put(f"{ENDPOINT}/_snapshot/{REPOSITORY}", json=wanted, auth=auth, timeout=30)
    put.raise_for_status()
    return {"repository": REPOSITORY, "status": "created", "verified_nodes": None}
