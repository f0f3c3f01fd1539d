"""Check what a function answered through the Lambda runtime API for one sample event.

Usage: lambda_expect.py <event file name> < answer
The answer is cargo lambda invoke's output: the function's JSON result, or the runtime's error.
Prints a one-line summary; exits 1 when the answer is not what the sample event should produce.
"""
import json
import sys

# The one invalid record each sample SQS batch holds (see events/README.md).
INVALID_RECORD = "9b5f6a3c-1d2e-4f80-b7a9-c3d4e5f60718"


def main() -> int:
    name = sys.argv[1]
    raw = sys.stdin.read()
    function, trigger = name.removesuffix(".json").rsplit(".", 1)
    try:
        answer = json.loads(raw)
    except json.JSONDecodeError:
        return fail(name, f"not JSON: {raw.strip()[:300]}")
    if trigger == "http":
        status = answer.get("statusCode")
        want = 201 if function == "create-conversation" else 200
        if status != want:
            return fail(name, f"HTTP {status}, expected {want}: {answer.get('body')}")
        body = json.loads(answer["body"])
        return ok(name, f"HTTP {status} {summary(body)}")
    if trigger == "sqs":
        failed = [item.get("itemIdentifier") for item in answer.get("batchItemFailures", [])]
        if failed != [INVALID_RECORD]:
            return fail(name, f"batchItemFailures {failed}, expected only [{INVALID_RECORD}]")
        return ok(name, f"batch: 1 of {3} records failed (the invalid one)")
    if "errorType" in answer or ("msg_id" not in answer and "messages" not in answer):
        return fail(name, f"expected a sent message, got {raw.strip()[:300]}")
    return ok(name, summary(answer))


def summary(body: dict) -> str:
    if "recalled" in body or "edited" in body:
        change = "recalled" if body.get("recalled") else "edited"
        return f"message {body['msg_id']} in {body['conversation_id']} {change}"
    if "silenced" in body:
        change = f"silenced for {body['ttl']} s" if body.get("ttl") else ("silenced" if body["silenced"] else "unsilenced")
        return f"members {', '.join(body['client_ids'])} of {body['conversation_id']} {change}"
    if "blocked" in body:
        change = "blocked" if body["blocked"] else "unblocked"
        return f"members {', '.join(body['client_ids'])} of {body['conversation_id']} {change}"
    if "objectId" in body:
        return f"conversation {body['objectId']} ({body.get('name')})"
    if "messages" in body:
        return f"message {body['messages'][0].get('msg_id')} in {body['conversation_id']}"
    if "msg_id" in body:
        return f"broadcast {body['msg_id']} in {body['conversation_id']}"
    if "client_ids" in body:
        return f"members {', '.join(body['client_ids'])} of {body['conversation_id']} updated"
    return json.dumps(body)[:200]


def ok(name: str, text: str) -> int:
    print(f"  ok    {name}: {text}")
    return 0


def fail(name: str, text: str) -> int:
    print(f"  FAIL  {name}: {text}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
