"""moto_server answering one request at a time.

moto's own `moto_server` is threaded and its DynamoDB backend does not lock: two concurrent conditional
writes can both pass their condition, which real DynamoDB never allows. The tests check exactly that
guarantee (one claim wins, a shared budget is never exceeded), so they run moto serially. Without threads
werkzeug speaks HTTP/1.0, so no keep-alive connection holds the server.

Usage: python moto_serial.py HOST PORT
"""

import os
import sys

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

host, port = sys.argv[1], int(sys.argv[2])
os.environ.setdefault("MOTO_PORT", str(port))
run_simple(
    host,
    port,
    DomainDispatcherApplication(create_backend_app),
    threaded=False,
    request_handler=MotoRequestHandler,
)
