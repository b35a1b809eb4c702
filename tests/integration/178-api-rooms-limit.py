"""A tenant's limit of rooms (limits.rooms; issue 14 part 5): the private rooms it has (not
deleted) are counted when POST /v1/rooms creates one; at the limit the create is 409 and
nothing is created; a deleted room frees its place. Public rooms are never created (only
joined) and not counted. A fresh tenant shows the default (10,000)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from api_client import Tenant, api_base, call_json, stack_load, unique  # noqa: E402
from checks import check, finish  # noqa: E402

stack = stack_load()
base = api_base(stack)
t = Tenant(stack)
status, body = call_json(base, t, "GET", "/settings")
check(status == 200 and body["limits"].get("rooms") == 10000, f"default limits.rooms: {body}")
status, body = call_json(base, t, "PATCH", "/settings", {"limits": {"rooms": 2}})
check(status == 200 and body["limits"]["rooms"] == 2, f"limits.rooms 2: {status}")
status, body = call_json(base, t, "PATCH", "/settings", {"limits": {"rooms": 0}})
check(status == 400 and "limits.rooms" in body["error"]["message"], f"0 refused: {status}")

rooms = [unique("r") for _ in range(3)]
for room in rooms[:2]:
    status, body = call_json(base, t, "POST", "/rooms", {"room": room, "members": ["alice"]})
    check(status == 201, f"room {room} created under the limit: {status} {body}")
status, body = call_json(base, t, "POST", "/rooms", {"room": rooms[2], "members": ["alice"]})
check(status == 409 and "limits.rooms" in body["error"]["message"],
      f"a third room is 409: {status} {body}")
status, _ = call_json(base, t, "GET", f"/rooms/{rooms[2]}")
check(status == 404, f"nothing was created: {status}")
status, body = call_json(base, t, "GET", "/stats")
check(status == 200 and body["rooms"] == 2, f"stats count 2 rooms: {body}")

status, _ = call_json(base, t, "DELETE", f"/rooms/{rooms[0]}")
check(status in (200, 204), f"a room deleted: {status}")
status, body = call_json(base, t, "POST", "/rooms", {"room": rooms[2], "members": ["alice"]})
check(status == 201, f"the deleted room's place is free again: {status} {body}")
finish()
