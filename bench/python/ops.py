"""The Python SDK side of the operation and fan-out benchmarks (leancloud==3.0.2, as the LeanCloud guide uses it).

  python ops.py single --iterations 200 --warmup 20
      -> {"create_conversation": [ms, ...], "add_member": [...], "send": [...], "system_send": [...], "broadcast": [...]}
  python ops.py fanout --recipients 10000 --chunk 20 [--conv ID]
      -> {"conv_id": ..., "calls": 500, "recipients": 10000, "total_s": ..., "vmhwm_kb": ...}

Reads LEANCLOUD_API_SERVER, LEANCLOUD_APP_ID, LEANCLOUD_APP_KEY, LEANCLOUD_APP_MASTER_KEY. Prints one JSON object on
stdout; any SDK error propagates (exit status 1), the harness reports it as a failed run.
"""

import argparse
import json
import os
import re
import time

import leancloud

SYSTEM_RECIPIENTS = 20


def init():
    leancloud.init(
        os.environ["LEANCLOUD_APP_ID"],
        app_key=os.environ.get("LEANCLOUD_APP_KEY"),
        master_key=os.environ["LEANCLOUD_APP_MASTER_KEY"],
    )


def vmhwm_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


def timed(fn, iterations, warmup):
    for i in range(warmup):
        fn(-1 - i)
    samples = []
    for i in range(iterations):
        t0 = time.perf_counter()
        fn(i)
        samples.append((time.perf_counter() - t0) * 1000.0)
    return samples


def single(args):
    run = "py%d" % int(time.time() * 1000)

    def create(i):
        conv = leancloud.Conversation("bench-create-%s-%d" % (run, i))
        conv.add_member("alice")
        conv.add_member("bob")
        conv.save()

    members_conv = leancloud.Conversation("bench-members-" + run)
    members_conv.save()

    def add_member(i):
        members_conv.add_member("member-%s-%d" % (run, i))
        members_conv.save()

    chat = leancloud.Conversation("bench-chat-" + run)
    chat.add_member("alice")
    chat.add_member("bob")
    chat.save()

    def send(i):
        chat.send("alice", "hello %d" % i)

    system = leancloud.Conversation("bench-system-" + run, is_system=True)
    system.save()
    recipients = ["user-%d" % n for n in range(SYSTEM_RECIPIENTS)]

    def system_send(i):
        system.send("system", "notice %d" % i, to_clients=recipients)

    def broadcast(i):
        system.broadcast("system", "broadcast %d" % i)

    out = {}
    for name, fn in [
        ("create_conversation", create),
        ("add_member", add_member),
        ("send", send),
        ("system_send", system_send),
        ("broadcast", broadcast),
    ]:
        out[name] = timed(fn, args.iterations, args.warmup)
    print(json.dumps(out))


def fanout(args):
    if args.conv:
        conv = leancloud.Conversation.create_without_data(args.conv)
    else:
        conv = leancloud.Conversation("bench-fanout-py-%d" % int(time.time() * 1000), is_system=True)
        conv.save()
    recipients = ["%s%d" % (args.prefix, n) for n in range(args.recipients)]
    chunks = [recipients[i : i + args.chunk] for i in range(0, len(recipients), args.chunk)]
    t0 = time.perf_counter()
    for chunk in chunks:
        conv.send("system", args.message, to_clients=chunk)
    total = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "conv_id": conv.id,
                "calls": len(chunks),
                "recipients": len(recipients),
                "total_s": total,
                "vmhwm_kb": vmhwm_kb(),
            }
        )
    )


def pkgsize(args):
    """Bytes on disk of a distribution and everything it requires (its deployment package), from RECORD files."""
    from importlib import metadata

    def norm(name):
        return re.sub(r"[-_.]+", "-", name).lower()

    seen, total, stack = set(), 0, [args.dist]
    while stack:
        name = stack.pop()
        if norm(name) in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # an optional or platform-specific requirement that is not installed
        seen.add(norm(name))
        for f in dist.files or []:
            path = f.locate()
            if os.path.isfile(path):
                total += os.path.getsize(path)
        for req in dist.requires or []:
            if "extra ==" in req:
                continue
            stack.append(re.split(r"[ ;<>=!~\[(]", req.strip(), maxsplit=1)[0])
    print(json.dumps({"bytes": total, "dists": sorted(seen)}))


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("single")
    p.add_argument("--iterations", type=int, default=200)
    p.add_argument("--warmup", type=int, default=20)
    p = sub.add_parser("fanout")
    p.add_argument("--recipients", type=int, default=10000)
    p.add_argument("--chunk", type=int, default=SYSTEM_RECIPIENTS)
    p.add_argument("--conv")
    p.add_argument("--prefix", default="py-user-")
    p.add_argument("--message", default="bench fan-out notification")
    p = sub.add_parser("pkgsize")
    p.add_argument("--dist", default="leancloud")
    args = parser.parse_args()
    if args.cmd == "pkgsize":
        return pkgsize(args)
    init()
    {"single": single, "fanout": fanout}[args.cmd](args)


if __name__ == "__main__":
    main()
