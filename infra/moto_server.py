#!/usr/bin/env python3
"""moto's server (as `moto_server`), with a few changes. First: requests are handled one
at a time.

Why: moto's DynamoDB TransactWriteItems is not isolated. It checks each
condition and applies each write in turn, and on a cancellation restores a
copy of the whole table taken when it started, so under concurrent requests
two transactions can both pass the same `attribute_not_exists` condition, and
a cancelled one can erase writes that other requests made meanwhile. Real
DynamoDB serialises transactions with each other and with single-item writes;
handling one request at a time gives moto that property, which the race tests
of the AWS adapters (e.g. 50 tasks inserting one folder name) rely on.
moto handles a request in a few milliseconds, so this costs little.

One more change, for speed only: moto's TransactWriteItems backs up (deep
copies, stream history included) each table once per action on it, so a
transaction costs more the longer the table's history. It now saves only the
items the transaction touches and the stream's length, and restores those when
the transaction is cancelled (see `roll_back_touched_items_only`).

And three gaps of moto's S3 multipart uploads, made to answer as S3 does (see
`s3_multipart_as_on_aws`): ListParts' XML root, UploadPart to an upload that
is completed or aborted, and UploadPartCopy's x-amz-copy-source-if-match.

Usage: python infra/moto_server.py [-H 127.0.0.1] [-p 5000]
"""

import argparse
import os
import signal
import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple


class OneAtATime:
    """A WSGI middleware that runs the application for one request at a time,
    reading the whole response before letting the next request in."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self.lock:
            body = self.app(environ, start_response)
            try:
                return [b"".join(body)]
            finally:
                close = getattr(body, "close", None)
                if close is not None:
                    close()


def roll_back_touched_items_only():
    """Makes moto's TransactWriteItems undo a cancelled transaction by
    restoring the items it touched and the stream as it was, instead of deep
    copying every table it touches (stream history included) once per action
    before running any. Same outcome, but a transaction's cost no longer grows
    with the table's history: a few hundred racing link creates took a minute
    and 1.8 GB, and now take seconds."""
    from moto.dynamodb import models
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    transact = models.DynamoDBBackend.transact_write_items
    real_copy = models.copy

    class NoTableCopies:
        """Stands in for the `copy` module during one call: tables are not
        copied (their touched items are saved instead); anything else is."""

        @staticmethod
        def deepcopy(obj):
            return obj if isinstance(obj, Table) else real_copy.deepcopy(obj)

    def touched(backend, transact_items):
        """(table, hash key, range key) of every action, or None if moto is
        about to refuse the request anyway (it then restores nothing)."""
        out = []
        for entry in transact_items:
            _, op = next(iter(entry.items()))
            table = backend.tables.get(op.get("TableName"))
            key = op.get("Item") if "Item" in op else op.get("Key")
            if table is None or key is None or table.hash_key_attr not in key:
                return None
            range_value = None
            if table.range_key_attr is not None:
                if table.range_key_attr not in key:
                    return None
                range_value = DynamoType(key[table.range_key_attr])
            out.append((table, DynamoType(key[table.hash_key_attr]), range_value))
        return out

    def restore(saved):
        for table, hash_value, range_value, item in saved:
            if range_value is None:
                if item is None:
                    table.items.pop(hash_value, None)
                else:
                    table.items[hash_value] = item
            elif item is None:
                table.items[hash_value].pop(range_value, None)
            else:
                table.items[hash_value][range_value] = item

    def transact_write_items(self, transact_items):
        keys = touched(self, transact_items)
        if keys is None:
            return transact(self, transact_items)
        saved = [(t, h, r, real_copy.deepcopy(t.get_item(h, r))) for t, h, r in keys]
        streams = {id(t): (t.stream_shard, len(t.stream_shard.items)) for t, _, _ in keys if t.stream_shard}
        # Safe to swap a module global: OneAtATime runs one request at a time.
        models.copy = NoTableCopies
        try:
            return transact(self, transact_items)
        except Exception:
            restore(reversed(saved))
            for shard, length in streams.values():
                del shard.items[length:]
            raise
        finally:
            models.copy = real_copy

    models.DynamoDBBackend.transact_write_items = transact_write_items


def s3_multipart_as_on_aws():
    """Three gaps of moto's S3 multipart uploads that the upload and archive
    code meets, made to answer as S3 does:
    - ListParts: moto names the XML root ListPartsResponse; S3 (and so the
      SDKs) ListPartsResult.
    - UploadPart (and UploadPartCopy) to an upload that was completed or
      aborted: moto fails with a KeyError, a 500; S3 answers 404 NoSuchUpload.
    - UploadPartCopy ignores x-amz-copy-source-if-match; S3 refuses a source
      whose ETag is another with 412 PreconditionFailed."""
    from urllib.parse import unquote, urlparse

    from moto.s3 import models, responses
    from moto.s3.exceptions import NoSuchUpload, PreconditionFailed

    list_parts = responses.S3Response.list_parts

    def list_parts_result(self):
        status, headers, body = list_parts(self)
        if isinstance(body, bytes):
            body = body.replace(b"ListPartsResponse", b"ListPartsResult")
        elif isinstance(body, str):
            body = body.replace("ListPartsResponse", "ListPartsResult")
        return status, headers, body

    def require_upload(method):
        def checked(self, bucket_name, multipart_id, *args, **kwargs):
            if multipart_id not in self.get_bucket(bucket_name).multiparts:
                raise NoSuchUpload(upload_id=multipart_id)
            return method(self, bucket_name, multipart_id, *args, **kwargs)

        return checked

    upload_part_copy = responses.S3Response.upload_part_copy

    def upload_part_copy_if_match(self):
        expected = self.headers.get("x-amz-copy-source-if-match")
        if expected is not None:
            source = self.headers.get("x-amz-copy-source")
            if isinstance(source, bytes):
                source = source.decode("utf-8")
            bucket, key = unquote(urlparse(source).path).lstrip("/").split("/", 1)
            stored = self.backend.get_object(bucket, key)
            if stored is not None and stored.etag.strip('"') != expected.strip('"'):
                raise PreconditionFailed("x-amz-copy-source-If-Match")
        return upload_part_copy(self)

    responses.S3Response.list_parts = list_parts_result
    responses.S3Response.upload_part_copy = upload_part_copy_if_match
    models.S3Backend.upload_part = require_upload(models.S3Backend.upload_part)
    models.S3Backend.upload_part_copy = require_upload(models.S3Backend.upload_part_copy)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1", help="the address to listen on")
    parser.add_argument("-p", "--port", type=int, default=int(os.environ.get("MOTO_PORT", 5000)))
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    roll_back_touched_items_only()
    s3_multipart_as_on_aws()
    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True
    run_simple(args.host, args.port, OneAtATime(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main(sys.argv[1:])
