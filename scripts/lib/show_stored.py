"""Print what the local server stored for the two conversations of a local run, read over its HTTP API.

Reads LEANCLOUD_API_SERVER, LEANCLOUD_APP_ID, LEANCLOUD_APP_MASTER_KEY, NORMAL_CONVERSATION_ID and
SYSTEM_CONVERSATION_ID from the environment.
"""
import json
import os
import urllib.request

BASE = os.environ["LEANCLOUD_API_SERVER"]
HEADERS = {
    "X-LC-Id": os.environ["LEANCLOUD_APP_ID"],
    "X-LC-Key": os.environ["LEANCLOUD_APP_MASTER_KEY"] + ",master",
    "Content-Type": "application/json",
}


def get(path):
    with urllib.request.urlopen(urllib.request.Request(BASE + path, headers=HEADERS), timeout=10) as answer:
        return json.load(answer)


def text(data):
    try:
        typed = json.loads(data)
    except (TypeError, ValueError):
        return data
    if isinstance(typed, dict) and typed.get("_lctype") == -127:
        return "(recalled)"
    return typed.get("_lctext", data) if isinstance(typed, dict) else data


def show(conversation_id, label):
    conversation = get(f"/1.1/classes/_Conversation/{conversation_id}")
    members = ", ".join(conversation.get("m") or []) or "none"
    print(f"  {label} conversation {conversation_id} \"{conversation.get('name')}\": members {members}")
    messages = get(f"/__admin/messages?conv_id={conversation_id}")
    for message in messages:
        kind = str(message.get("kind", "")).lower()
        to = message.get("recipients") or []
        what = "broadcast" if "broadcast" in kind else ("message to " + ", ".join(to) if to else "message")
        print(f"    {what} {message.get('msg_id')} from {message.get('from')}: {text(message.get('data'))}")
    broadcasts = sum(1 for m in messages if "broadcast" in str(m.get("kind", "")).lower())
    print(f"    ({len(messages) - broadcasts} messages, {broadcasts} broadcasts stored)")
    if conversation.get("sys"):
        return
    # mute-members and block-members, read back over the 1.2 API.
    silenced = get(f"/1.2/rtm/conversations/{conversation_id}/permanent-silenceds?limit=100").get("client_ids") or []
    blocked = get(f"/1.2/rtm/conversations/{conversation_id}/blacklists?limit=100").get("client_ids") or []
    print(f"    silenced until lifted: {', '.join(silenced) or 'none'}; blocked: {', '.join(blocked) or 'none'}")


show(os.environ["NORMAL_CONVERSATION_ID"], "normal")
show(os.environ["SYSTEM_CONVERSATION_ID"], "system")
