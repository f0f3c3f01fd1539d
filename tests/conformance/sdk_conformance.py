"""Conformance of the server with the official Python SDK (leancloud==3.0.2).

Run by scripts/checks/10-sdk-conformance.sh, which starts the server and sets:
  LEANCLOUD_API_SERVER   base URL of the server (no trailing slash)
  SDK_APP_ID, SDK_APP_KEY, SDK_MASTER_KEY   the credentials the server was started with
  SDK_SMTP_PORT          the loopback port of the server's --smtp-url, where a stand-in SMTP server is started here

Every check asserts exact values. The last line is `sdk-conformance: N passed, M failed`; the exit status is
non-zero when any check failed.
"""

import hashlib
import io
import json
import os
import quopri
import re
import socketserver
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request
from datetime import datetime, timezone

import leancloud
from leancloud import Conversation, File, LeanCloudError, Message, User

BASE = os.environ["LEANCLOUD_API_SERVER"].rstrip("/")
APP_ID = os.environ["SDK_APP_ID"]
APP_KEY = os.environ["SDK_APP_KEY"]
MASTER_KEY = os.environ["SDK_MASTER_KEY"]

leancloud.init(APP_ID, app_key=APP_KEY, master_key=MASTER_KEY)

CHECKS = []
ctx = {}
MAILS = []


class SmtpSink(socketserver.StreamRequestHandler):
    """A stand-in SMTP server (EHLO, MAIL, RCPT, DATA, QUIT) keeping each mail's recipients and text."""

    def reply(self, line):
        self.wfile.write((line + "\r\n").encode())

    def handle(self):
        self.reply("220 sink ESMTP")
        recipients = []
        for raw in self.rfile:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            upper = line.upper()
            if upper.startswith("RCPT TO:"):
                recipients.append(line[8:].split()[0].strip("<>"))
                self.reply("250 OK")
            elif upper == "DATA":
                self.reply("354 go on")
                data = []
                for body_line in self.rfile:
                    body_line = body_line.rstrip(b"\r\n")
                    if body_line == b".":
                        break
                    data.append(body_line[1:] if body_line.startswith(b".") else body_line)
                text = quopri.decodestring(b"\n".join(data)).decode("utf-8", "replace")
                MAILS.append({"to": recipients, "text": text})
                recipients = []
                self.reply("250 OK queued")
            elif upper == "QUIT":
                self.reply("221 bye")
                return
            elif upper.startswith(("EHLO", "HELO")):
                self.reply("250 sink")
            else:
                self.reply("250 OK")


def start_smtp_sink():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", int(os.environ["SDK_SMTP_PORT"])), SmtpSink)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()


def check(fn):
    CHECKS.append(fn)
    return fn


def stored_messages(conv_id):
    """What the server stored (its inspector over HTTP, master key)."""
    request = urllib.request.Request(
        "{}/__admin/messages?conv_id={}".format(BASE, conv_id),
        headers={"X-LC-Id": APP_ID, "X-LC-Key": MASTER_KEY + ",master"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def expect_error(code, fn):
    try:
        fn()
    except LeanCloudError as err:
        assert err.code == code, "expected code {}, got {}".format(code, err)
        return err
    raise AssertionError("expected LeanCloudError {}".format(code))


def iso_age_ok(dt):
    assert isinstance(dt, datetime), dt
    assert abs((datetime.now(timezone.utc) - dt).total_seconds()) < 600, dt


@check
def create_normal_conversation_with_members_and_attributes():
    conv = Conversation("测试 conv")
    conv.add_member("alice")
    conv.add_member("bob")
    conv.set("attr", {"topic": "weather", "level": 1})
    conv.set("score", 10)
    conv.save()
    assert isinstance(conv.id, str) and len(conv.id) == 24, conv.id
    iso_age_ok(conv.created_at)
    assert conv.updated_at == conv.created_at
    ctx["conv"] = conv

    got = Conversation.query.get(conv.id)
    assert got.id == conv.id
    assert got.name == "测试 conv"
    assert got.members == ["alice", "bob"]
    assert got.get("attr") == {"topic": "weather", "level": 1}
    assert got.get("score") == 10
    assert got.is_system is None and got.is_transient is None
    assert got.created_at == conv.created_at


@check
def create_system_conversation_with_attributes():
    sysconv = Conversation("notices", is_system=True)
    sysconv.set("attr", {"kind": "service"})
    sysconv.save()
    got = Conversation.query.get(sysconv.id)
    assert got.name == "notices"
    assert got.is_system is True
    assert got.get("attr") == {"kind": "service"}
    ctx["sys"] = sysconv


@check
def create_transient_conversation_with_attributes():
    room = Conversation("lobby", is_transient=True, is_unique=True)
    room.set("attr", {"capacity": 100})
    room.save()
    got = Conversation.query.get(room.id)
    assert got.name == "lobby"
    assert got.is_transient is True
    # The SDK drops `unique` for transient conversations.
    assert got.is_unique is None
    assert got.get("attr") == {"capacity": 100}
    ctx["room"] = room


@check
def unique_conversation_is_found_again_by_its_member_set():
    first = Conversation("pair", is_unique=True)
    first.add_member("x")
    first.add_member("y")
    first.save()
    second = Conversation("pair again", is_unique=True)
    second.add_member("y")
    second.add_member("x")
    second.save()
    assert second.id == first.id, (first.id, second.id)
    assert second.name == "pair"
    third = Conversation("trio", is_unique=True)
    for member in ("x", "y", "z"):
        third.add_member(member)
    third.save()
    assert third.id != first.id
    ctx["pair"] = first


@check
def queries_select_filter_order_and_count():
    conv, sysconv, room = ctx["conv"], ctx["sys"], ctx["room"]
    first = Conversation.query.equal_to("name", "测试 conv").first()
    assert first.id == conv.id

    found = (
        Conversation.query.contained_in("m", ["alice"])
        .greater_than("updatedAt", datetime(2000, 1, 1, tzinfo=timezone.utc))
        .descending("updatedAt")
        .limit(10)
        .select("name", "m")
        .find()
    )
    assert [c.id for c in found] == [conv.id]
    assert found[0].name == "测试 conv" and found[0].members == ["alice", "bob"]
    assert found[0].get("attr") is None, "keys= leaves other fields out"

    assert Conversation.query.equal_to("sys", True).count() == 1
    either = Conversation.query.or_(
        Conversation.query.equal_to("tr", True), Conversation.query.equal_to("sys", True)
    )
    either.ascending("createdAt")
    assert [c.id for c in either.find()] == [sysconv.id, room.id]

    everything = Conversation.query.ascending("createdAt").find()
    assert len(everything) == 5
    page = Conversation.query.ascending("createdAt").skip(1).limit(2).find()
    assert [c.id for c in page] == [everything[1].id, everything[2].id]
    assert [c.id for c in Conversation.query.equal_to("attr.topic", "weather").find()] == [conv.id]
    assert Conversation.query.equal_to("name", "nothing like it").count() == 0
    expect_error(101, lambda: Conversation.query.equal_to("name", "nothing like it").first())


@check
def add_members_then_update_attributes():
    conv = ctx["conv"]
    conv.add_member("carol")
    conv.save()
    conv.add_member("dave")
    conv.add_member("erin")
    conv.save()
    conv.add_unique("m", "alice")
    conv.increment("score", 5)
    conv.set("attr", {"topic": "news", "level": 2})
    conv.save()
    got = Conversation.query.get(conv.id)
    assert got.members == ["alice", "bob", "carol", "dave", "erin"], got.members
    assert got.get("score") == 15
    assert got.get("attr") == {"topic": "news", "level": 2}
    assert got.updated_at >= got.created_at

    conv.remove("m", "erin")
    conv.save()
    assert Conversation.query.get(conv.id).members == ["alice", "bob", "carol", "dave"]


@check
def conditional_save_with_where():
    conv = ctx["pair"]
    conv.set("name", "renamed")
    err = expect_error(305, lambda: conv.save(where=Conversation.query.equal_to("name", "not the name")))
    assert "No effect" in err.error
    assert Conversation.query.get(conv.id).name == "pair"
    conv.set("name", "renamed")
    conv.save(where=Conversation.query.equal_to("name", "pair"), fetch_when_save=True)
    assert Conversation.query.get(conv.id).name == "renamed"


@check
def send_a_string_and_a_dict_message():
    conv = ctx["conv"]
    conv.send("alice", "hello")
    conv.send("bob", {"_lctype": -1, "_lctext": "你好"})
    stored = stored_messages(conv.id)
    assert [(m["from"], m["data"], m["kind"], m["transient"]) for m in stored] == [
        ("alice", "hello", "normal", False),
        ("bob", json.dumps({"_lctype": -1, "_lctext": "你好"}), "normal", False),
    ], stored
    # A transient message in the chat room is stored but not part of history.
    ctx["room"].send("alice", "just passing", transient=True)
    assert [m["data"] for m in stored_messages(ctx["room"].id)] == ["just passing"]


@check
def system_message_to_chosen_clients_with_push():
    sysconv = ctx["sys"]
    push = {"alert": "新消息", "badge": "Increment", "sound": "default"}
    sysconv.send("sys", "hi u1 and u2", to_clients=["u1", "u2"], push_data=push)
    stored = stored_messages(sysconv.id)
    assert len(stored) == 1, stored
    m = stored[0]
    assert (m["from"], m["data"], m["kind"]) == ("sys", "hi u1 and u2", "to_clients")
    assert m["recipients"] == ["u1", "u2"]
    assert m["push"] == push and m["push_field"] == "push_data"


@check
def broadcast_with_push_and_valid_till():
    sysconv = ctx["sys"]
    sysconv.broadcast("sys", {"_lctype": -1, "_lctext": "to everyone"}, push_data={"alert": "x"})
    till = int(time.time() * 1000) + 3600 * 1000
    sysconv.broadcast("sys", "expires soon", valid_till=till)
    broadcasts = [m for m in stored_messages(sysconv.id) if m["kind"] == "broadcast"]
    assert [m["data"] for m in broadcasts] == [json.dumps({"_lctype": -1, "_lctext": "to everyone"}), "expires soon"]
    assert broadcasts[0]["push"] == {"alert": "x"} and broadcasts[0]["push_field"] == "push_data"
    assert broadcasts[1]["push"] is None and broadcasts[1]["valid_till"] == till
    month = 31 * 24 * 3600 * 1000
    assert 0 < broadcasts[0]["valid_till"] - int(time.time() * 1000) <= month


@check
def history_reads_the_messages_back():
    conv = ctx["conv"]
    msgs = Message.find_by_conversation(conv.id)
    assert [m.data for m in msgs] == [json.dumps({"_lctype": -1, "_lctext": "你好"}), "hello"]
    newest, oldest = msgs
    assert (newest.from_client, oldest.from_client) == ("bob", "alice")
    for m in msgs:
        assert m.conversation_id == conv.id and m.to == conv.id
        assert m.is_conversation is True and m.is_room is False and m.bin is False
        assert m.from_ip == "127.0.0.1"
        assert isinstance(m.message_id, str) and len(m.message_id) == 22
        assert abs(time.time() - m.timestamp) < 600
    assert newest.timestamp >= oldest.timestamp

    assert [m.data for m in Message.find_by_conversation(conv.id, limit=1, reversed=True)] == ["hello"]
    older = Message.find_by_conversation(conv.id, before_time=newest.timestamp, before_message_id=newest.message_id)
    assert [m.message_id for m in older] == [oldest.message_id]
    assert [m.data for m in Message.find_by_client("alice")] == ["hello"]
    # Broadcasts and transient messages are not part of history.
    assert [m.data for m in Message.find_all()] == [
        "hi u1 and u2",
        json.dumps({"_lctype": -1, "_lctext": "你好"}),
        "hello",
    ]
    assert Message.find_by_conversation(ctx["room"].id) == []
    # A system conversation's per-user history: md5(convId + ":" + clientId).
    key = hashlib.md5("{}:u1".format(ctx["sys"].id).encode()).hexdigest()
    assert [m.data for m in Message.find_by_conversation(key)] == ["hi u1 and u2"]


@check
def errors_come_back_as_leancloud_errors():
    conv, sysconv = ctx["conv"], ctx["sys"]
    missing = Conversation.create_without_data("000000000000000000000000")
    expect_error(4401, lambda: missing.send("alice", "nobody home"))
    expect_error(4313, lambda: conv.broadcast("alice", "not a system conversation"))
    expect_error(4313, lambda: conv.send("alice", "x", to_clients=["u1"]))
    expect_error(1, lambda: sysconv.send("sys", "x", to_clients=["u{}".format(i) for i in range(21)]))
    expect_error(413, lambda: conv.send("alice", "x" * 5121))
    too_late = int(time.time() * 1000) + 40 * 24 * 3600 * 1000
    expect_error(1, lambda: sysconv.broadcast("sys", "x", valid_till=too_late))
    assert len(stored_messages(conv.id)) == 2


@check
def the_app_key_cannot_send_and_wrong_keys_are_refused():
    conv = ctx["conv"]
    leancloud.use_master_key(False)
    try:
        expect_error(119, lambda: conv.send("alice", "with the app key"))
        # `_Conversation`'s default class permissions keep it to the master key.
        expect_error(403, lambda: Conversation.query.get(conv.id))
    finally:
        leancloud.use_master_key(True)
    leancloud.init(APP_ID, master_key="not-the-master-key")
    try:
        err = expect_error(401, lambda: conv.send("alice", "wrong key"))
        assert err.error == "Unauthorized."
    finally:
        leancloud.init(APP_ID, app_key=APP_KEY, master_key=MASTER_KEY)
    assert len(stored_messages(conv.id)) == 2


@check
def a_trailing_slash_in_the_base_url_works():
    os.environ["LEANCLOUD_API_SERVER"] = BASE + "/"
    try:
        ctx["conv"].send("alice", "via //1.1")
    finally:
        os.environ["LEANCLOUD_API_SERVER"] = BASE
    assert stored_messages(ctx["conv"].id)[-1]["data"] == "via //1.1"


class app_key_only:
    """Within: requests signed with the app key (this script otherwise signs with the master key)."""

    def __enter__(self):
        leancloud.use_master_key(False)

    def __exit__(self, *exc):
        leancloud.client.USE_MASTER_KEY = None


def http_get(url):
    """(status, content type, body) of a plain GET, as a browser or an image view would send it."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers.get("Content-Type"), response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("Content-Type"), err.read()


@check
def a_file_is_saved_served_fetched_and_destroyed():
    data = b"blah blah blah\n" * 1000
    f = File("notes.txt", io.BytesIO(data))
    assert f._metadata["_checksum"] == hashlib.md5(data).hexdigest()
    f.save()
    assert f.id and f.url.startswith(BASE + "/"), f.url
    assert f.mime_type == "text/plain", f.mime_type
    assert f.created_at == f.updated_at
    assert http_get(f.url) == (200, "text/plain", data)
    got = File.create_without_data(f.id)
    got.fetch()
    assert (got.url, got.name, got.size) == (f.url, "notes.txt", len(data)), (got.url, got.name, got.size)
    assert got.metadata["_checksum"] == hashlib.md5(data).hexdigest()
    with app_key_only():
        expect_error(403, f.destroy)
    assert http_get(f.url)[0] == 200, "the app key may not delete a file"
    f.destroy()
    assert http_get(f.url)[0] == 404
    assert leancloud.Query("_File").equal_to("objectId", f.id).count() == 0


@check
def only_the_master_key_chooses_a_file_key_and_it_is_the_url_path():
    key = "conformance-{}.txt".format(int(time.time() * 1000))
    f = File("Blah.txt", io.BytesIO(b"keyed"))
    f.key = key
    with app_key_only():
        f.save()
    assert f.url != "{}/{}".format(BASE, key), "an app-key client's key is ignored"
    assert http_get(f.url) == (200, "text/plain", b"keyed")
    f = File("Blah.txt", io.BytesIO(b"keyed"))
    f.key = key
    f.save()
    assert f.url == "{}/{}".format(BASE, key), f.url
    assert http_get(f.url) == (200, "text/plain", b"keyed")


@check
def an_external_file_keeps_its_url():
    url = "http://example.com/images/default-avatar.png"
    f = File.create_with_url("lenna.jpg", url)
    f.save()
    assert f.id and f.created_at == f.updated_at
    got = File.create_without_data(f.id)
    got.fetch()
    assert (got.name, got.url) == ("lenna.jpg", url)
    assert got.metadata["__source"] == "external"


@check
def a_failed_upload_s_callback_deletes_the_file():
    tokens = {}

    def keep_token(token, *args, **kwargs):
        tokens["token"] = token

    f = File("never.bin", io.BytesIO(b"never uploaded"))
    f._save_to_s3 = keep_token
    f.save()
    assert leancloud.Query("_File").equal_to("objectId", f.id).count() == 1
    f._save_callback(tokens["token"], False)
    # The SDK posts the callback from a thread of its own.
    for _ in range(100):
        if leancloud.Query("_File").equal_to("objectId", f.id).count() == 0:
            return
        time.sleep(0.05)
    raise AssertionError("the file of a failed upload is still there")


@check
def a_user_resets_a_forgotten_password_through_the_mailed_link():
    user = User()
    user.set_username("sdk-reset-user")
    user.set_password("old-password")
    user.set_email("sdk-reset@example.com")
    user.sign_up()
    User.request_password_reset("sdk-reset@example.com")
    err = expect_error(601, lambda: User.request_password_reset("sdk-reset@example.com"))
    assert "Too many emails" in err.error, err.error
    expect_error(205, lambda: User.request_password_reset("nobody@example.com"))
    assert [m["to"] for m in MAILS] == [["sdk-reset@example.com"]], MAILS
    link = re.search(r"/auth/reset-password#token=([0-9a-f]{64})", MAILS[0]["text"])
    assert link, MAILS[0]["text"]
    # What the page does with the link: posts the token from the fragment and the new password.
    request = urllib.request.Request(
        BASE + "/auth/reset-password",
        data=json.dumps({"token": link.group(1), "password": "new-password"}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200 and json.loads(response.read()) == {}
    expect_error(210, lambda: User().login("sdk-reset-user", "old-password"))
    again = User()
    again.login("sdk-reset-user", "new-password")
    assert again.get("emailVerified") is True
    assert again.get_session_token() and again.get_session_token() != user.get_session_token()


@check
def destroy_removes_the_conversation():
    room = ctx["room"]
    room.destroy()
    got = Conversation.query.get(room.id)
    assert got.name is None and got.created_at is None
    assert Conversation.query.equal_to("tr", True).count() == 0
    expect_error(4401, lambda: room.send("alice", "gone"))


def main():
    start_smtp_sink()
    passed = failed = 0
    for fn in CHECKS:
        try:
            fn()
        except Exception:  # noqa: BLE001 - report every failure, keep going
            failed += 1
            print("FAIL {}".format(fn.__name__))
            traceback.print_exc()
        else:
            passed += 1
            print("ok   {}".format(fn.__name__))
    print("sdk-conformance: {} passed, {} failed".format(passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
