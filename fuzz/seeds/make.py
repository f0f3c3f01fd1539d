#!/usr/bin/env python3
"""Writes the seed inputs of each fuzz target to <out>/<target>/ (default fuzz/seeds/out): the sample events in
events/, the frames captured in the realtime protocol notes, storage bodies and queries from the docs and tests, and
LeanCloud answers. `cargo fuzz cmin` then keeps what adds coverage in fuzz/corpus/<target>/ (see fuzz/README.md)."""
import base64, copy, glob, hashlib, json, os, re, sys

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "fuzz", "seeds", "out")
docs = [p for p in [os.path.join(root, "docs"), os.path.join(os.path.dirname(root), "shared", "docs")] if os.path.isdir(p)]


def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


def compact(v):
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"))


# functions_event: the sample events, their payloads on their own (Scheduler input), and variations.
events = {os.path.basename(p): json.load(open(p)) for p in sorted(glob.glob(os.path.join(root, "events", "*.json")))}
http_template = events.get("send-message.http.json")
for name, event in events.items():
    put("functions_event", compact(event))
    if "body" in event and isinstance(event["body"], str):
        try:
            put("functions_event", event["body"])
        except Exception:
            pass
    for record in event.get("Records", []):
        put("functions_event", record.get("body", ""))
    if "detail" in event:
        put("functions_event", compact(event["detail"]))

def http(method, path, body=None, headers=None, query=None, b64=False):
    e = copy.deepcopy(http_template)
    e["routeKey"] = f"{method} {path}"
    e["rawPath"] = path
    e["requestContext"]["http"]["method"] = method
    e["requestContext"]["http"]["path"] = path
    e["pathParameters"] = {}
    if body is None:
        e.pop("body", None)
    else:
        text = compact(body) if not isinstance(body, str) else body
        e["body"] = base64.b64encode(text.encode()).decode() if b64 else text
    e["isBase64Encoded"] = b64
    if headers:
        e["headers"].update(headers)
    if query:
        e["rawQueryString"] = query
        e["queryStringParameters"] = dict(kv.split("=", 1) for kv in query.split("&"))
    return compact(e)

if http_template:
    schedule = {"operation": "broadcast", "conversation_id": "c1", "payload": {"from_client": "ops", "message": "hi"},
                "cron": "0 9 ? * MON-FRI *", "timezone": "Europe/Berlin", "name": "weekday-notice"}
    for extra in [{}, {"cron": None, "rate": "5 minutes"}, {"cron": None, "send_at": "2027-01-01T00:00:00+01:00"},
                  {"cron": None, "send_at": 1830000000000}, {"operation": "send-message", "cron": "0/15 * * * ? 2027"}]:
        body = {**schedule, **extra}
        body = {k: v for k, v in body.items() if v is not None}
        put("functions_event", http("POST", "/schedules", body))
        put("functions_event", compact(body))
    put("functions_event", http("GET", "/schedules"))
    put("functions_event", http("DELETE", "/schedules/weekday-notice"))
    put("functions_event", http("POST", "/conversations", {"name": "n", "members": ["a", "b"], "unique": True}))
    put("functions_event", http("POST", "/conversations/c1/members", {"client_ids": ["a"]}))
    put("functions_event", http("DELETE", "/conversations/c1/members", {"client_ids": ["a"]}))
    put("functions_event", http("POST", "/conversations/c%2F1/messages", {"from_client": "a", "message": {"_lctype": -1, "_lctext": "x"}},
                                headers={"idempotency-key": "k1"}, query="dry_run=true", b64=True))
    put("functions_event", http("POST", "/conversations/c1/broadcasts", {"from_client": "a", "message": "hi", "valid_till": "2026-12-01T00:00:00Z",
                                "push_data": {"alert": "x", "badge": "Increment"}, "to_clients": ["b"]}))

# server_body: where / keys / order / `[app ]query` / `+create` / update lines.
def body_case(where="", keys="", order="", extra="", objects=()):
    lines = [where if isinstance(where, str) else compact(where), keys, order, extra]
    for obj in objects:
        for i, b in enumerate(obj):
            lines.append(("+" if i == 0 else "") + compact(b))
    put("server_body", "\n".join(lines))

date = lambda iso: {"__type": "Date", "iso": iso}
body_case({"n": {"$gt": 1, "$lte": 3}}, "n,m", "-n", "limit=2&count=1",
          [[{"n": 1, "m": ["a"]}, {"n": {"__op": "Increment", "amount": 2}}], [{"n": 5, "m": ["b", "c"]}]])
body_case({"m": {"$all": ["a", "b"]}, "$or": [{"x": {"$exists": False}}, {"x": None}]}, "", "m,-createdAt", "skip=1",
          [[{"m": ["a"]}, {"m": {"__op": "AddUnique", "objects": ["b", "b", {"k": 1}]}}],
           [{"m": {"__op": "Add", "objects": [1, 2]}}, {"m": {"__op": "Remove", "objects": [1]}}]])
body_case({"when": {"$gte": date("2024-05-01T00:00:00.000Z")}}, "when", "when", "app count=true",
          [[{"when": date("2024-05-01T00:00:00.000Z"), "ACL": {"*": {"read": True}}}], [{"when": "2024-06-01T00:00:00Z"}]])
body_case({"color.text": "#333", "objectId": {"$in": ["obj0", "obj1"]}}, "color.text", "+color.text", "returnACL=1",
          [[{"color.text": "#333", "objectId": "x", "ACL": {"*": {"read": True, "write": True}}}, {"color": {"__op": "Delete"}}]])
body_case({"$and": [{"flags": {"$size": 2}}, {"b": {"$ne": 3}}, {"p": {"__type": "Pointer", "className": "_User", "objectId": "u1"}}]}, "flags,b", "-b,flags", "limit=0",
          [[{"flags": {"__op": "BitOr", "value": 6}, "b": {"__op": "Batch", "ops": [{"__op": "Increment"}, {"__op": "Decrement", "amount": 0.5}]}}],
           [{"p": {"__type": "Pointer", "className": "_User", "objectId": "u1"}, "flags": [1, 2]}, {"flags": {"__op": "BitXor", "value": 1}}]])
body_case({"m": {"$nin": ["Tom"]}, "tr": True, "name": "Tom & Jerry"}, "name,m,c", "-updatedAt", "limit=10&skip=0",
          [[{"name": "Tom & Jerry", "m": ["Jerry", "Tom"], "c": "Jerry", "unique": True, "tr": True, "attr": {"color": "red"}}]])
body_case("", "", "", "", [[{"n": {"__op": "Frobnicate"}}], [{"createdAt.x": 1}], [{"ACL": {"__op": "Delete"}}]])

# client_response: status, Retry-After, body.
answers = [
    ("200", "", {"objectId": "5f1c", "createdAt": "2024-01-01T00:00:00.000Z"}),
    ("201", "", {"objectId": "5f1c", "createdAt": "2024-01-01T00:00:00.000Z", "updatedAt": "2024-01-01T00:00:00.000Z"}),
    ("200", "", {"objectId": "conv1", "c": "Jerry", "m": ["Jerry", "Tom"], "name": "Tom & Jerry", "unique": True, "tr": False, "sys": False,
                 "attr": {"k": "v"}, "createdAt": "2024-01-01T00:00:00.000Z", "updatedAt": "2024-01-01T00:00:00.000Z",
                 "lm": {"__type": "Date", "iso": "2024-01-01T00:00:00.000Z"}}),
    ("200", "", {"results": [{"objectId": "conv1", "m": ["a"], "createdAt": "2024-01-01T00:00:00.000Z"}], "count": 1}),
    ("200", "", {"msg-id": "m1", "timestamp": 1700000000000}),
    ("200", "", {"result": {"msg-id": "m1", "timestamp": 1700000000000}}),
    ("200", "", [{"timestamp": 1700000000000, "conv-id": "c1", "data": "hi", "from": "a", "msg-id": "m1", "is-conv": True,
                  "is-room": False, "to": "c1", "bin": False, "from-ip": "1.2.3.4", "ack-at": 1700000000001}]),
    ("200", "", {}),
    ("400", "", {"code": 4301, "error": "CONVERSATION_NOT_FOUND"}),
    ("404", "", {"code": 101, "error": "Object not found."}),
    ("200", "", {"code": 1, "error": {"nested": True}}),
    ("429", "7", {"code": 4318, "error": "Too many requests."}),
    ("429", "Wed, 21 Oct 2015 07:28:00 GMT", ""),
    ("429", "Wed, 21 Oct 2099 07:28:00 GMT", ""),
    ("429", "", "<html>Too Many Requests</html>"),
    ("502", "", "<html>Bad Gateway</html>"),
    ("503", "120", {"error": "unavailable"}),
    ("204", "", ""),
]
for status, retry, body in answers:
    put("client_response", f"{status}\n{retry}\n" + (body if isinstance(body, str) else compact(body)))

# realtime_frame: every captured frame, binary and base64, and the subprotocol names.
for d in docs:
    for p in glob.glob(os.path.join(d, "*.md")):
        for h in re.findall(r"hex=([0-9a-f]+)", open(p).read()):
            if len(h) % 2 == 0:
                raw = bytes.fromhex(h)
                put("realtime_frame", raw)
                put("realtime_frame", base64.b64encode(raw))
for name in ["lc.protobuf2.3", "lc.proto2base64.3", "lc.protobuf2.1", " lc.proto2base64.1, lc.protobuf2.3"]:
    put("realtime_frame", name)

for t in sorted(os.listdir(out)):
    print(t, len(os.listdir(os.path.join(out, t))))
