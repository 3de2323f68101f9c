"""What a user would script to copy a snapshot repository from S3 to Azure Blob Storage: list the
bucket under the repository's base path, then, object by object, GET it from S3 and upload it to
the container (boto3 + azure-storage-blob, as their documentation shows). The baseline of the copy
benchmark (tests/benches/copy_to_azure.rs), run on the same repository as `copy`.

Settings, as ossnap's: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL_S3
(the local S3), SNAPSHOT_BUCKET, SNAPSHOT_BASE_PATH; AZURE_STORAGE_ACCOUNT,
AZURE_STORAGE_CONTAINER, AZURE_STORAGE_KEY, AZURE_STORAGE_ENDPOINT (Azurite's blob endpoint, e.g.
http://127.0.0.1:10000/devstoreaccount1) and AZURE_STORAGE_BASE_PATH (default: the S3 base path);
COPY_TWIN_MAX_BLOBS stops it after that many blobs (a sample of a repository too slow to copy whole).

Prints one JSON line: blobs, bytes, seconds, requests by kind, peak_rss_kib (this process).
"""

import json
import os
import resource
import sys
import time

import boto3
from azure.storage.blob import BlobServiceClient


def main():
    bucket = os.environ["SNAPSHOT_BUCKET"]
    base = os.environ.get("SNAPSHOT_BASE_PATH", "").strip("/")
    prefix = f"{base}/" if base else ""
    azure_base = os.environ.get("AZURE_STORAGE_BASE_PATH", base).strip("/")
    account = os.environ["AZURE_STORAGE_ACCOUNT"]
    endpoint = os.environ.get(
        "AZURE_STORAGE_ENDPOINT", f"https://{account}.blob.core.windows.net"
    )

    s3 = boto3.client("s3")
    service = BlobServiceClient(
        account_url=endpoint,
        credential={"account_name": account, "account_key": os.environ["AZURE_STORAGE_KEY"]},
    )
    container = service.get_container_client(os.environ["AZURE_STORAGE_CONTAINER"])

    limit = int(os.environ.get("COPY_TWIN_MAX_BLOBS", "0")) or None
    requests = {"s3_list": 0, "s3_get": 0, "azure_put": 0}
    blobs = 0
    copied = 0
    started = time.monotonic()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        requests["s3_list"] += 1
        for item in page.get("Contents", []):
            if blobs == limit:
                break
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            requests["s3_get"] += 1
            name = item["Key"][len(prefix):]
            target = f"{azure_base}/{name}" if azure_base else name
            container.upload_blob(target, body, overwrite=True)
            # One Put Blob up to max_single_put_size (64 MiB), blocks beyond.
            requests["azure_put"] += 1
            blobs += 1
            copied += len(body)
        if blobs == limit:
            break
    seconds = time.monotonic() - started
    json.dump(
        {
            "blobs": blobs,
            "bytes": copied,
            "seconds": seconds,
            "requests": requests,
            "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        },
        sys.stdout,
    )
    print()


if __name__ == "__main__":
    main()
