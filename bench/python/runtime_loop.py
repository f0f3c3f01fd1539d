"""A minimal Lambda runtime interface client (fallback when awslambdaric is not installed).

Usage: AWS_LAMBDA_RUNTIME_API=host:port python runtime_loop.py module.function
Implements the three calls a runtime needs: GET next invocation, POST its response or its error.
"""

import importlib
import json
import os
import sys
import traceback
import urllib.request


def main():
    api = os.environ["AWS_LAMBDA_RUNTIME_API"]
    if not api.startswith("http://"):
        api = "http://" + api
    base = api.rstrip("/") + "/2018-06-01/runtime"
    module_name, function_name = sys.argv[1].rsplit(".", 1)
    sys.path.insert(0, os.getcwd())
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
    except Exception as exc:  # report init errors like the real runtime
        body = json.dumps({"errorMessage": str(exc), "errorType": type(exc).__name__}).encode()
        urllib.request.urlopen(urllib.request.Request(base + "/init/error", data=body, method="POST"))
        sys.exit(1)
    while True:
        with urllib.request.urlopen(base + "/invocation/next") as resp:
            request_id = resp.headers["Lambda-Runtime-Aws-Request-Id"]
            event = json.loads(resp.read())
        try:
            result = handler(event, None)
            url, body = base + "/invocation/" + request_id + "/response", json.dumps(result).encode()
        except Exception as exc:
            traceback.print_exc()
            url = base + "/invocation/" + request_id + "/error"
            body = json.dumps({"errorMessage": str(exc), "errorType": type(exc).__name__}).encode()
        urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST")).read()


if __name__ == "__main__":
    main()
