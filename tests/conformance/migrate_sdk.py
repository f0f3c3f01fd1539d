"""The official Python SDK (leancloud==3.0.2) around a migration: `seed` creates conversations and messages on
the first server and prints what the SDK reads there; `dump` prints what the SDK reads on a server (the second
one, after export and import). scripts/checks/11-migrate-sdk.sh compares the two dumps.

Environment: LEANCLOUD_API_SERVER, SDK_APP_ID, SDK_APP_KEY, SDK_MASTER_KEY.
"""
import json
import os
import sys

import leancloud
from leancloud import Conversation, Message

leancloud.init(os.environ["SDK_APP_ID"], app_key=os.environ["SDK_APP_KEY"], master_key=os.environ["SDK_MASTER_KEY"])
leancloud.use_master_key(True)


def seed():
    conv = Conversation("SDK ✓ 会话")
    conv.set("topic", "migration")
    conv.save()
    conv.add_member("alice")
    conv.add_member("bob")
    room = Conversation("SDK lobby", is_transient=True)
    room.save()
    sysconv = Conversation("SDK notices", is_system=True)
    sysconv.save()
    for i in range(30):
        conv.send("alice" if i % 2 else "bob", "hello {} ✓".format(i) if i % 3 else {"_lctype": -1, "_lctext": "rich {}".format(i)})
    room.send("carol", "in the lobby")
    sysconv.send("notices", "to u1 and u2", to_clients=["u1", "u2"])


def dump():
    out = {"conversations": [], "history": {}}
    for c in Conversation.query.ascending("createdAt").limit(1000).find():
        out["conversations"].append({
            "id": c.id, "name": c.name, "members": c.members, "creator": c.creator, "topic": c.get("topic"),
            "is_system": c.is_system, "is_transient": c.is_transient,
            "created_at": c.created_at.isoformat(), "updated_at": c.updated_at.isoformat(),
        })
        msgs = Message.find_by_conversation(c.id, limit=1000)
        out["history"][c.id] = [
            [m.message_id, m.timestamp, m.from_client, m.data, m.bin, m.is_room] for m in msgs
        ]
    return out


if __name__ == "__main__":
    if sys.argv[1] == "seed":
        seed()
    print(json.dumps(dump(), ensure_ascii=False, sort_keys=True, indent=1))
