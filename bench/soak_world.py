"""The soak's world: a directory, rules, the bus messages to publish, and the notifications they
must produce, computed before the run by the rule engine itself (fmn.rules.match).

Two kinds of messages, interleaved:
- real corpus messages (their schemas installed), each with a fresh id: matched by packages
  owned by users and groups, by the users they name and by their agents; notified by email;
- synthetic messages of an uninstalled schema, matched on their fedora_messaging_* headers,
  whose topic is unique: their summary falls back to the topic, so each one's IRC line is
  unique and a received line names its message. They are notified by IRC and email.

A few destinations cannot be delivered to, on purpose: an address the SMTP server refuses (550)
and an IRC nick nobody uses (401). Their notifications must end as explained dead letters.
"""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fmn.directory.local import DirectoryData, LocalDirectory
from fmn.notify import build_work_items, one_line
from fmn.rules.incoming import ParsedMessage
from fmn.rules.match import match_messages
from fmn.rules.schema import Rule
from fmn.sendqueue.workitem import idempotency_key

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
PUBLIC_URL = "https://notifications.soak.test"
MAIL_DOMAIN = "soak.test"  # of the sender's From address, which Message-IDs end with
SOAK_TOPIC = "org.fedoraproject.prod.soak"
SOAK_SCHEMA = "fmn.soak.event.v1"  # not installed, on purpose
REFUSED_EMAIL = "refused@example.org"  # the SMTP server answers 550 for it
OFFLINE_NICK = "soakgone"  # no IRC client uses this nick: the server answers 401
PLANNED_DEAD = {
    REFUSED_EMAIL: "SMTP 550",
    OFFLINE_NICK: "IRC server refused",
}
SOAK_PACKAGES = [f"soakpkg{i}" for i in range(12)]
BAD_PACKAGE = "soakpkg-bad"


def email_message_id(key: str) -> str:
    """The Message-ID the email sender gives a notification: derived from its idempotency key,
    so a received mail names its notification (tests/reliability checks it stays so)."""
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:40]}@{MAIL_DOMAIN}>"


def irc_ident(nick: str, line: str) -> str:
    return f"{nick} {line}"


@dataclass(frozen=True)
class Notification:
    key: str
    message: int  # index in World.messages
    protocol: str
    address: str
    ident: str  # email: the Message-ID; IRC: irc_ident(nick, line)
    planned_dead: str | None  # the reason it cannot be delivered, known in advance


@dataclass
class Message:
    id: str
    topic: str
    headers: dict[str, Any]
    body: bytes  # serialized once: corpus bodies are shared between their copies

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "topic": self.topic,
            "headers": self.headers,
            "body": json.loads(self.body),
        }


@dataclass
class World:
    directory: dict[str, Any]
    rules: list[dict[str, Any]]
    messages: list[Message] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    irc_nicks: list[str] = field(default_factory=list)  # nicks the harness listens as

    async def add_messages(self, messages: list[Message]) -> list[Notification]:
        """Append messages and the notifications the rule engine says they produce."""
        start = len(self.messages)
        self.messages.extend(messages)
        found = await expected_notifications(self, messages, start)
        self.notifications.extend(found)
        return found


def corpus_templates() -> list[dict[str, Any]]:
    """Corpus messages that name their schema, as fedora-messaging serializes them."""
    templates = []
    for path in sorted(CORPUS.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            raw = json.loads(line)
            headers = raw.get("headers")
            if isinstance(headers, dict) and headers.get("fedora_messaging_schema"):
                templates.append(raw)
    return templates


def _corpus_names(templates: list[dict[str, Any]]) -> tuple[list[str], list[str], list[str]]:
    from fmn.rules.incoming import parse_message

    packages: set[str] = set()
    users: set[str] = set()
    agents: set[str] = set()
    for raw in templates:
        parsed = parse_message(raw)
        packages.update(parsed.packages)
        users.update(parsed.usernames)
        if parsed.agent_name:
            agents.add(parsed.agent_name)
    return sorted(packages), sorted(users), sorted(agents)


def _rule(
    rule_id: int, owner: str, tracking: dict[str, Any], destinations: list[Any], **filters: Any
) -> dict[str, Any]:
    return {
        "id": rule_id,
        "name": f"soak rule {rule_id}",
        "user": {"name": owner},
        "disabled": False,
        "tracking_rule": tracking,
        "generation_rules": [
            {
                "destinations": [{"protocol": p, "address": a} for p, a in destinations],
                "filters": filters,
            }
        ],
    }


def build_world(
    templates: list[dict[str, Any]], n_users: int = 40, irc_users: int = 6, seed: int = 1
) -> World:
    """Users, groups, ownership and rules; messages are added by `add_messages`."""
    rng = random.Random(seed)
    packages, corpus_users, agents = _corpus_names(templates)
    soak_users = [f"soak{i:03d}" for i in range(n_users)]
    irc_nicks = [f"soakirc{i}" for i in range(irc_users)]
    people = soak_users + [u for u in corpus_users if u not in soak_users] + ["soakbad"]
    groups = {f"soakgroup{i}": rng.sample(soak_users, 4) for i in range(4)}
    projects: dict[str, Any] = {}
    for name in packages:
        projects[f"rpms/{name}"] = {
            "access_users": {
                "owner": rng.sample(soak_users, 1),
                "commit": rng.sample(soak_users, 1),
            },
            "access_groups": {"commit": [rng.choice(sorted(groups))]},
        }
    for name in [*SOAK_PACKAGES, BAD_PACKAGE]:
        projects[f"rpms/{name}"] = {"access_users": {"owner": ["soakbad"]}}
    directory = {
        "users": {
            u: {"username": u, "emails": [f"{u}@example.org"], "ircnicks": []} for u in people
        },
        "groups": {g: {"members": m, "sponsors": []} for g, m in groups.items()},
        "projects": projects,
    }
    rules: list[dict[str, Any]] = []

    def add(owner: str, tracking: dict[str, Any], destinations: list[Any], **filters: Any) -> None:
        rules.append(_rule(len(rules) + 1, owner, tracking, destinations, **filters))

    for user in soak_users:
        mail = [("email", f"{user}@example.org")]
        add(user, {"name": "artifacts-owned", "params": [user]}, mail)
        if rng.random() < 0.3:
            add(user, {"name": "users-followed", "params": rng.sample(agents, 2)}, mail)
        if rng.random() < 0.3:
            group = rng.choice(sorted(groups))
            add(
                user,
                {"name": "artifacts-group-owned", "params": [group]},
                mail,
                severities=["info", "warning", "error"],
            )
        if rng.random() < 0.3:
            follow = [{"name": p, "type": "rpms"} for p in rng.sample(SOAK_PACKAGES, 2)]
            add(user, {"name": "artifacts-followed", "params": follow}, mail)
    for user in corpus_users:
        add(
            user,
            {"name": "related-events", "params": None},
            [("email", f"{user}@example.org")],
            excluded_applications=["fedocal"],
        )
    for i, nick in enumerate(irc_nicks):
        follow = [{"name": p, "type": "rpms"} for p in SOAK_PACKAGES[i :: len(irc_nicks)]]
        # IRC only for the synthetic messages, whose lines are unique.
        add(
            soak_users[i],
            {"name": "artifacts-followed", "params": follow},
            [("irc", nick)],
            topic=f"{SOAK_TOPIC}.*",
        )
    add(
        "soakbad",
        {"name": "artifacts-followed", "params": [{"name": BAD_PACKAGE, "type": "rpms"}]},
        [("email", REFUSED_EMAIL), ("irc", OFFLINE_NICK)],
    )
    return World(directory=directory, rules=rules, irc_nicks=irc_nicks)


def make_messages(
    templates: list[dict[str, Any]], count: int, start: int = 0, seed: int = 1
) -> list[Message]:
    """`count` messages: about 70% corpus copies, the rest synthetic with unique topics."""
    rng = random.Random(seed * 1_000_003 + start)
    bodies = [json.dumps(t["body"]).encode() for t in templates]
    soak_users = [f"soak{i:03d}" for i in range(8)]
    messages = []
    for n in range(start, start + count):
        if rng.random() < 0.7:
            i = rng.randrange(len(templates))
            headers = {k: v for k, v in templates[i]["headers"].items() if k != "sent-at"}
            messages.append(
                Message(
                    str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    templates[i]["topic"],
                    headers,
                    bodies[i],
                )
            )
            continue
        package = BAD_PACKAGE if rng.random() < 0.005 else rng.choice(SOAK_PACKAGES)
        user = rng.choice(soak_users)
        kind = rng.choice(["build", "update", "commit"])
        headers = {
            "fedora_messaging_schema": SOAK_SCHEMA,
            "fedora_messaging_severity": 20,
            f"fedora_messaging_rpm_{package}": True,
            f"fedora_messaging_user_{user}": True,
        }
        body = {"seq": n, "package": package, "user": user, "kind": kind}
        messages.append(
            Message(
                str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                f"{SOAK_TOPIC}.{kind}.m{n:07d}",
                headers,
                json.dumps(body).encode(),
            )
        )
    return messages


async def expected_notifications(
    world: World, messages: Iterable[Message], start: int
) -> list[Notification]:
    rules = [Rule.model_validate(r) for r in world.rules]
    directory = LocalDirectory(DirectoryData.model_validate(world.directory))
    results = await match_messages(rules, [m.as_dict() for m in messages], directory)
    found = []
    for offset, result in enumerate(results):
        parsed = result.message
        if parsed is None or parsed.deprecated or not result.matches:
            continue  # refused by the consumer, or superseded by its new-schema twin
        for match in result.matches:
            key = idempotency_key(parsed.id, match.protocol, match.address)
            if match.protocol == "email":
                ident = email_message_id(key)
            else:
                ident = irc_ident(match.address, _irc_line(parsed, match))
            found.append(
                Notification(
                    key,
                    start + offset,
                    match.protocol,
                    match.address,
                    ident,
                    PLANNED_DEAD.get(match.address),
                )
            )
    return found


def _irc_line(parsed: ParsedMessage, match: Any) -> str:
    (item,) = build_work_items(parsed, [match])
    assert item.chat is not None
    return one_line(item.chat.text)


def ownership_change(world: World, distgit_url: str, seq: int) -> Message:
    """A dist-git message re-stating who owns a package that rules track: it changes nothing,
    but every consumer must ask the directory again before going on."""
    path = next(p for p in sorted(world.directory["projects"]) if "soakpkg" not in p)
    owner = world.directory["projects"][path]["access_users"]["owner"][0]
    namespace, name = path.split("/", 1)
    body = {
        "project": {
            "name": name,
            "namespace": namespace,
            "fullname": path,
            "full_url": f"{distgit_url}/{path}",
            "parent": None,
        },
        "new_user": owner,
        "new_access": "admin",
        "agent": "soakadmin",
    }
    topic = "org.fedoraproject.prod.pagure.project.user.access.updated"
    return Message(
        str(uuid.uuid5(uuid.NAMESPACE_URL, f"soak-change-{seq}")),
        topic,
        {},
        json.dumps(body).encode(),
    )
