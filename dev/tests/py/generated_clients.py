"""Calls each service through the gateway with the Python client openapi-python-client generated
from the service's OpenAPI document (dev/tests/openapi.rs generates them, then runs this).

Usage: python3 generated_clients.py <folder of the generated packages>
Environment: TANSU_BASE (https://gateway), TANSU_CA (the gateway's certificate, PEM),
TANSU_ADMIN_TOKEN (admin.full), TANSU_TENANT_TOKEN (the tenant's db.* and storage.* scopes),
TANSU_TENANT (its id).

Prints one line of JSON: what each service answered, read through the generated models.
"""

import io
import json
import os
import ssl
import sys

sys.path.insert(0, sys.argv[1])

# The generated packages (one per document, named by the test).
from tansu_identity import AuthenticatedClient as IdentityClient  # noqa: E402
from tansu_identity.api.members import get_admin_tenants_tid_users  # noqa: E402
from tansu_database import AuthenticatedClient as DatabaseClient  # noqa: E402
from tansu_database.api.collections import post_api_collections  # noqa: E402
from tansu_database.api.documents import (  # noqa: E402
    get_api_collections_c_documents_id,
    put_api_collections_c_documents_id,
)
from tansu_database.models import NewCollection, PutApiCollectionsCDocumentsIdBody  # noqa: E402
from tansu_storage import AuthenticatedClient as StorageClient  # noqa: E402
from tansu_storage.api.buckets import put_api_buckets_bucket  # noqa: E402
from tansu_storage.api.objects import (  # noqa: E402
    get_api_buckets_bucket_objects_key,
    put_api_buckets_bucket_objects_key,
)
from tansu_storage.models import BucketSettings  # noqa: E402
from tansu_storage.types import File  # noqa: E402

base = os.environ["TANSU_BASE"]
tls = ssl.create_default_context(cafile=os.environ["TANSU_CA"])
admin = os.environ["TANSU_ADMIN_TOKEN"]
tenant_token = os.environ["TANSU_TENANT_TOKEN"]
tenant = os.environ["TANSU_TENANT"]


def client(cls, prefix, token):
    return cls(
        base_url=base + prefix,
        token=token,
        verify_ssl=tls,
        raise_on_unexpected_status=True,
        timeout=30.0,
    )


out = {}

# identity's admin API: the tenant's members.
with client(IdentityClient, "/identity", admin) as c:
    r = get_admin_tenants_tid_users.sync_detailed(tid=tenant, client=c, limit="10")
    out["identity"] = {
        "status": int(r.status_code),
        "emails": [m.email for m in r.parsed.items],
    }

# database-svc: a collection, a document written and read back.
with client(DatabaseClient, "/db", tenant_token) as c:
    created = post_api_collections.sync_detailed(
        client=c, body=NewCollection(name="generated")
    )
    body = PutApiCollectionsCDocumentsIdBody.from_dict({"sku": "A-1", "qty": 3})
    written = put_api_collections_c_documents_id.sync_detailed(
        c="generated", id="first", client=c, body=body
    )
    read = get_api_collections_c_documents_id.sync_detailed(
        c="generated", id="first", client=c
    )
    out["database"] = {
        "status": [int(created.status_code), int(written.status_code), int(read.status_code)],
        "document": read.parsed.to_dict(),
    }

# storage-svc: a bucket, an object uploaded and downloaded.
with client(StorageClient, "/storage", tenant_token) as c:
    bucket = put_api_buckets_bucket.sync_detailed(
        bucket="generated", client=c, body=BucketSettings()
    )
    payload = b"bytes through a generated client\x00\xff"
    put = put_api_buckets_bucket_objects_key.sync_detailed(
        bucket="generated",
        key="hello.bin",
        client=c,
        body=File(payload=io.BytesIO(payload), mime_type="application/octet-stream"),
    )
    got = get_api_buckets_bucket_objects_key.sync_detailed(
        bucket="generated", key="hello.bin", client=c
    )
    out["storage"] = {
        "status": [int(bucket.status_code), int(put.status_code), int(got.status_code)],
        "same_bytes": got.parsed.payload.read() == payload,
        "content_type": got.headers.get("content-type"),
    }

print(json.dumps(out))
