"""A boto3 twin of ossnap's `verify`, as a Lambda handler, for `make bench` only.

It does the first part of verify's work: list the repository's root index-N blobs and read the
newest, then list one shard folder, with boto3's S3 client (AWS_ENDPOINT_URL_S3, path-style).
"""
import json
import os

import boto3
from botocore.config import Config

S3 = boto3.client("s3", config=Config(s3={"addressing_style": "path"}))
BUCKET = os.environ["SNAPSHOT_BUCKET"]
BASE = os.environ["SNAPSHOT_BASE_PATH"]


def handler(event, context):
    pages = S3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"{BASE}/index-")
    generations = [
        int(item["Key"].rsplit("-", 1)[1])
        for page in pages
        for item in page.get("Contents", [])
        if item["Key"].rsplit("-", 1)[1].isdigit()
    ]
    newest = max(generations)
    body = S3.get_object(Bucket=BUCKET, Key=f"{BASE}/index-{newest}")["Body"].read()
    data = json.loads(body)
    snapshot = next(s for s in data["snapshots"] if s["name"] == event["snapshot"])
    index = next(iter(data["indices"].values()))
    listing = S3.list_objects_v2(Bucket=BUCKET, Prefix=f"{BASE}/indices/{index['id']}/0/")
    return {"snapshot": snapshot["name"], "blobs": listing.get("KeyCount", 0)}
