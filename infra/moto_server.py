#!/usr/bin/env python3
"""moto's server (as `moto_server`), with one change: requests are handled one
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


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1", help="the address to listen on")
    parser.add_argument("-p", "--port", type=int, default=int(os.environ.get("MOTO_PORT", 5000)))
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True
    run_simple(args.host, args.port, OneAtATime(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main(sys.argv[1:])
