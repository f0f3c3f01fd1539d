"""The Python side of the cold-start benchmark: what a Python Lambda function using the official SDK does.

Module level (the INIT phase): `import leancloud` and `leancloud.init(...)`, as a Python function would.
`handler` (the first invocation): decode the API Gateway HTTP API v2 event for
`POST /conversations/{conversation_id}/messages` and send the message with `Conversation.send`, like our
`send-message` binary does with the same event.

Run under a runtime interface client: `python -m awslambdaric handler.handler` or, where awslambdaric is not
installed, `python runtime_loop.py handler.handler`.
"""

import json
import os

import leancloud

leancloud.init(
    os.environ["LEANCLOUD_APP_ID"],
    app_key=os.environ.get("LEANCLOUD_APP_KEY"),
    master_key=os.environ["LEANCLOUD_APP_MASTER_KEY"],
)


def _conversation_id(event):
    params = event.get("pathParameters") or {}
    if params.get("conversation_id"):
        return params["conversation_id"]
    # /conversations/{id}/messages
    parts = event.get("rawPath", "").strip("/").split("/")
    return parts[1]


def handler(event, context):
    body = json.loads(event.get("body") or "{}")
    conv = leancloud.Conversation.create_without_data(_conversation_id(event))
    conv.send(
        body["from_client"],
        body["message"],
        to_clients=body.get("to_clients"),
        transient=body.get("transient", False),
        push_data=body.get("push_data"),
    )
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps({"sent": True}),
    }
