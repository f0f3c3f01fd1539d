"""End-to-end checks of recall-message, mute-members and block-members through the Lambda runtime API emulator
(`cargo lambda watch`) against a real leancloud-server: what each function answers over HTTP (function URLs) and
SQS (the Invoke API), and what the server then holds, read back over its 1.2 REST API with the master key.

Usage (from scripts/checks/30-lambda-runtime.sh, after local_start):
    python3 scripts/lib/moderation_check.py
Environment: LAMBDA_PORT, LEANCLOUD_API_SERVER, LEANCLOUD_APP_ID, LEANCLOUD_APP_MASTER_KEY.
Prints one line per check and `moderation: N passed, M failed`; exits 1 when a check failed. The master key is
sent only to the server and never printed.
"""
from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any

LAMBDA = f"http://127.0.0.1:{os.environ['LAMBDA_PORT']}"
SERVER = os.environ["LEANCLOUD_API_SERVER"].rstrip("/")
APP_ID = os.environ["LEANCLOUD_APP_ID"]
MASTER_KEY = os.environ["LEANCLOUD_APP_MASTER_KEY"]
RECALLED = '{"_lctype":-127}'

passed = 0
failed = 0


def check(name: str, condition: bool, detail: Any = "") -> bool:
    global passed, failed
    text = json.dumps(detail)[:300] if not isinstance(detail, str) else detail[:300]
    if MASTER_KEY in text:
        condition, text = False, "the master key appears in an answer"
    if condition:
        passed += 1
        print(f"  ok    {name}")
    else:
        failed += 1
        print(f"  FAIL  {name}: {text}")
    return condition


def request(method: str, url: str, body: Any = None, headers: dict | None = None) -> tuple[int, Any]:
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    try:
        return status, json.loads(raw) if raw else None
    except json.JSONDecodeError:
        return status, raw.decode(errors="replace")


def function_url(function: str, method: str, path: str, body: Any) -> tuple[int, Any]:
    return request(method, f"{LAMBDA}/lambda-url/{function}{path}", body)


def invoke(function: str, event: dict) -> Any:
    """The Lambda Invoke API of the emulator: the function's result (an SQS batch answer)."""
    _, answer = request("POST", f"{LAMBDA}/2015-03-31/functions/{function}/invocations", event)
    return answer


def server(method: str, path: str, body: Any = None) -> tuple[int, Any]:
    return request(method, f"{SERVER}{path}", body, {"X-LC-Id": APP_ID, "X-LC-Key": f"{MASTER_KEY},master"})


def sqs_event(function: str, bodies: list[str]) -> dict:
    return {"Records": [{
        "messageId": f"{function}-{i}", "receiptHandle": "r", "body": body, "attributes": {},
        "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:us-east-1:123456789012:im-{function}", "awsRegion": "us-east-1",
    } for i, body in enumerate(bodies)]}


def failures(answer: Any) -> list[str] | None:
    if not isinstance(answer, dict) or "batchItemFailures" not in answer:
        return None
    return sorted(item["itemIdentifier"] for item in answer["batchItemFailures"])


def error_of(body: Any) -> tuple[Any, Any]:
    error = (body or {}).get("error", {}) if isinstance(body, dict) else {}
    return error.get("code"), error.get("leancloud_code")


def sent(conv: str, sender: str, text: str) -> tuple[str, int]:
    status, body = function_url("send-message", "POST", f"/conversations/{conv}/messages",
                                {"from_client": sender, "message": text})
    if status != 200:
        raise SystemExit(f"send-message answered {status}: {body}")
    message = body["messages"][0]
    return message["msg_id"], message["timestamp"]


def history(conv: str) -> dict[str, str]:
    status, records = server("GET", f"/1.2/rtm/conversations/{conv}/messages?limit=100")
    if status != 200 or not isinstance(records, list):
        return {}
    return {r["msg-id"]: r["data"] for r in records}


def listed(conv: str, what: str) -> list[str]:
    status, body = server("GET", f"/1.2/rtm/conversations/{conv}/{what}?limit=100")
    return body.get("client_ids", []) if status == 200 and isinstance(body, dict) else [f"HTTP {status}"]


def members(conv: str) -> list[str]:
    status, body = server("GET", f"/1.2/rtm/conversations/{conv}/members")
    return body.get("result", []) if status == 200 and isinstance(body, dict) else [f"HTTP {status}"]


def recall_checks(conv: str) -> None:
    print("-- recall-message")
    mid, ts = sent(conv, "alice", "to be recalled")
    path = f"/conversations/{conv}/messages/{mid}"
    status, body = function_url("recall-message", "POST", f"{path}/recall", {"from_client": "alice", "timestamp": ts})
    check("recall: 200 with the message", status == 200 and body == {
        "conversation_id": conv, "msg_id": mid, "timestamp": ts, "recalled": True}, [status, body])
    check("recall: the history holds the recalled message", history(conv).get(mid) == RECALLED, history(conv).get(mid))
    status, body = function_url("recall-message", "POST", f"{path}/recall", {"from_client": "alice", "timestamp": ts})
    check("recall again: 200 (idempotent by message id)", status == 200, [status, body])

    mid2, ts2 = sent(conv, "alice", "with a typo")
    path2 = f"/conversations/{conv}/messages/{mid2}"
    status, body = function_url("recall-message", "PUT", path2,
                                {"from_client": "alice", "message": "without a typo", "timestamp": ts2})
    check("edit: 200", status == 200 and body.get("edited") is True and "recalled" not in body, [status, body])
    check("edit: the history holds the new content", history(conv).get(mid2) == "without a typo", history(conv).get(mid2))
    status, body = function_url("recall-message", "POST", f"{path2}/recall", {"from_client": "bob", "timestamp": ts2})
    check("recall as another client: 403 forbidden (4403)", status == 403 and error_of(body) == ("forbidden", 4403),
          [status, body])
    status, body = function_url("recall-message", "POST", f"{path2}/recall", {"from_client": "alice", "timestamp": ts2 + 1})
    check("recall with the wrong timestamp: 404 message_not_found (4404)",
          status == 404 and error_of(body) == ("message_not_found", 4404), [status, body])
    check("the message is untouched by the refusals", history(conv).get(mid2) == "without a typo", history(conv).get(mid2))
    for name, method, url, payload, want in [
        ("recall without timestamp", "POST", f"{path2}/recall", {"from_client": "alice"}, 400),
        ("recall with a message", "POST", f"{path2}/recall", {"from_client": "alice", "timestamp": ts2, "message": "x"}, 400),
        ("edit without message", "PUT", path2, {"from_client": "alice", "timestamp": ts2}, 400),
        ("a body that is not JSON", "PUT", path2, b"{not json", 400),
        ("DELETE on the message", "DELETE", path2, {"from_client": "alice", "timestamp": ts2}, 405),
        ("recall in an unknown conversation", "POST", f"/conversations/nosuchconv/messages/{mid2}/recall",
         {"from_client": "alice", "timestamp": ts2}, 404),
    ]:
        status, body = function_url("recall-message", method, url, payload)
        check(f"{name}: {want}", status == want, [status, body])

    mid3, ts3 = sent(conv, "alice", "recalled through the queue")
    answer = invoke("recall-message", sqs_event("recall-message", [
        json.dumps({"conversation_id": conv, "msg_id": mid3, "from_client": "alice", "timestamp": ts3}),
        json.dumps({"conversation_id": conv, "msg_id": mid3, "from_client": "alice", "timestamp": ts3 + 7}),
        "from_client=alice",
    ]))
    check("SQS: only the unknown message and the non-JSON record fail",
          failures(answer) == ["recall-message-1", "recall-message-2"], answer)
    check("SQS: the valid record recalled its message", history(conv).get(mid3) == RECALLED, history(conv).get(mid3))


def mute_checks(conv: str) -> None:
    print("-- mute-members")
    path = f"/conversations/{conv}/silenced"
    status, body = function_url("mute-members", "POST", path, {"client_ids": ["bob", "carol"]})
    check("silence until lifted: 200", status == 200 and body == {
        "conversation_id": conv, "client_ids": ["bob", "carol"], "silenced": True}, [status, body])
    check("the server lists them as permanently silenced",
          {"bob", "carol"} <= set(listed(conv, "permanent-silenceds")), listed(conv, "permanent-silenceds"))
    status, body = function_url("mute-members", "POST", path, {"client_ids": ["dave"], "ttl": 600})
    check("silence for 600 s: 200", status == 200 and body.get("ttl") == 600 and body.get("silenced") is True,
          [status, body])
    status, body = function_url("mute-members", "DELETE", path, {"client_ids": ["bob", "carol", "dave"]})
    check("lift: 200, silenced false", status == 200 and body.get("silenced") is False, [status, body])
    check("the server no longer lists them", not {"bob", "carol"} & set(listed(conv, "permanent-silenceds")),
          listed(conv, "permanent-silenceds"))
    for name, method, payload, want in [
        ("ttl 0", "POST", {"client_ids": ["bob"], "ttl": 0}, 400),
        ("ttl over a day", "POST", {"client_ids": ["bob"], "ttl": 86401}, 400),
        ("no client ids", "POST", {"client_ids": []}, 400),
        ("a repeated id", "POST", {"client_ids": ["bob", "bob"]}, 400),
        ("lift with a ttl", "DELETE", {"client_ids": ["bob"], "ttl": 5}, 400),
        ("GET", "GET", {"client_ids": ["bob"]}, 405),
    ]:
        status, body = function_url("mute-members", method, path, payload)
        check(f"{name}: {want}", status == want, [status, body])
    status, body = function_url("mute-members", "POST", "/conversations/nosuchconv/silenced", {"client_ids": ["bob"]})
    check("an unknown conversation: 404 conversation_not_found", status == 404 and error_of(body)[0] == "conversation_not_found",
          [status, body])
    answer = invoke("mute-members", sqs_event("mute-members", [
        json.dumps({"conversation_id": conv, "client_ids": ["erin"]}),
        json.dumps({"conversation_id": conv, "client_ids": ["erin"], "ttl": 0}),
        json.dumps({"conversation_id": conv, "client_ids": ["bob"], "action": "unmute"}),
        json.dumps({"conversation_id": conv, "client_ids": ["bob"], "action": "shush"}),
    ]))
    check("SQS: only the invalid records fail", failures(answer) == ["mute-members-1", "mute-members-3"], answer)
    check("SQS: the valid record silenced erin", "erin" in listed(conv, "permanent-silenceds"),
          listed(conv, "permanent-silenceds"))


def block_checks(conv: str) -> None:
    print("-- block-members")
    path = f"/conversations/{conv}/blocked"
    check("erin is a member before", "erin" in members(conv), members(conv))
    status, body = function_url("block-members", "POST", path, {"client_ids": ["erin"]})
    check("block: 200", status == 200 and body == {"conversation_id": conv, "client_ids": ["erin"], "blocked": True},
          [status, body])
    check("the server lists erin as blocked", "erin" in listed(conv, "blacklists"), listed(conv, "blacklists"))
    check("erin is no longer a member", "erin" not in members(conv), members(conv))
    status, body = server("POST", f"/1.2/rtm/conversations/{conv}/members", {"client_ids": ["erin"]})
    check("the server refuses to add erin back (4548)", status == 400 and (body or {}).get("code") == 4548,
          [status, body])
    status, body = function_url("block-members", "DELETE", path, {"client_ids": ["erin"]})
    check("unblock: 200, blocked false", status == 200 and body.get("blocked") is False, [status, body])
    check("the server no longer lists erin", "erin" not in listed(conv, "blacklists"), listed(conv, "blacklists"))
    status, body = server("POST", f"/1.2/rtm/conversations/{conv}/members", {"client_ids": ["erin"]})
    check("erin can be added again", status == 200 and "erin" in members(conv), [status, body])
    for name, method, payload, want in [
        ("no client ids", "POST", {"client_ids": []}, 400),
        ("client_ids a string", "POST", {"client_ids": "erin"}, 400),
        ("an unknown field", "POST", {"client_ids": ["erin"], "ttl": 5}, 400),
        ("PUT", "PUT", {"client_ids": ["erin"]}, 405),
    ]:
        status, body = function_url("block-members", method, path, payload)
        check(f"{name}: {want}", status == want, [status, body])
    answer = invoke("block-members", sqs_event("block-members", [
        json.dumps({"conversation_id": conv, "client_ids": ["carol"]}),
        json.dumps({"conversation_id": conv, "client_ids": "mallory"}),
        json.dumps({"conversation_id": conv, "client_ids": ["nobody"], "action": "unblock"}),
    ]))
    check("SQS: only the invalid record fails", failures(answer) == ["block-members-1"], answer)
    check("SQS: carol is blocked and removed", "carol" in listed(conv, "blacklists") and "carol" not in members(conv),
          [listed(conv, "blacklists"), members(conv)])


def main() -> int:
    status, body = function_url("create-conversation", "POST", "/conversations", {
        "name": "Moderation checks", "creator": "olga", "members": ["olga", "alice", "bob", "carol", "dave", "erin"]})
    if status != 201:
        print(f"  FAIL  create the conversation: {status} {body}")
        return 1
    conv = body["objectId"]
    recall_checks(conv)
    mute_checks(conv)
    block_checks(conv)
    print(f"moderation: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
