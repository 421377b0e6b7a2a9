"""Benchmark of the rule engine, in process: prints figures for docs/performance.md ("Matching").

    .venv/bin/python bench/bench_matching.py [--rules 1000,10000,100000] [--messages 10000]
        [--new-kinds 1]

A synthetic directory of 10,000 users (the corpus messages' own users among them), 500 groups
and 20,000 packages (the corpus messages' packages among them, each with a few owners); rules
of every tracking rule and filter kind spread over those users, fmn's own kinds (applications,
topics, projects-followed) at a share scaled by --new-kinds (0: FMN 3's kinds only); real corpus
messages (those with a schema, cycled), on the topics production gives them. Measured per
rule count: index build, matching rate on parsed messages, parse+match rate, candidates and
notifications per message, matching's CPU time per notification, memory held by the index, and
the time to replace one user's rules; then, per tracking rule kind, its candidates and the
notifications its rules alone asked for.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import random
import statistics
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fmn.dev.feed import production_topic
from fmn.directory.local import DirectoryData, LocalDirectory
from fmn.notify import build_work_items
from fmn.rules.incoming import ParsedMessage, parse_message
from fmn.rules.index import RuleIndex
from fmn.rules.schema import Rule, UserRef

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
USERS = 10_000
GROUPS = 500
PACKAGES = 20_000
APPS = ["bodhi", "Koji", "Pagure", "Bugzilla", "Discourse", "FAS", "fedocal", "anitya"]


def corpus_messages() -> list[dict[str, Any]]:
    messages = []
    for path in sorted(CORPUS.glob("*.jsonl")):
        for number, line in enumerate(path.read_text().splitlines()):
            raw = json.loads(line)
            if raw.get("headers", {}).get("fedora_messaging_schema"):
                raw["id"] = f"{path.name}:{number}"
                raw["topic"] = production_topic(raw["topic"])
                messages.append(raw)
    return messages


def synthetic_directory(rng: random.Random, parsed: list[ParsedMessage]) -> DirectoryData:
    real_users = sorted({u for m in parsed for u in (*m.usernames, m.agent_name or "") if u})
    users = (real_users + [f"user{i}" for i in range(USERS)])[:USERS]
    real_packages = sorted({p for m in parsed for p in m.packages})
    packages = (real_packages + [f"pkg{i}" for i in range(PACKAGES)])[:PACKAGES]
    groups = [f"group{i}" for i in range(GROUPS)]
    projects: dict[str, Any] = {}
    for name in packages:
        projects[f"rpms/{name}"] = {
            "access_users": {"owner": [rng.choice(users)], "commit": rng.sample(users, 2)},
            "access_groups": {"commit": [rng.choice(groups)]} if rng.random() < 0.3 else {},
        }
    return DirectoryData.model_validate(
        {
            "users": {u: {"username": u, "emails": [f"{u}@example.org"]} for u in users},
            "groups": {g: {"members": rng.sample(users, 10)} for g in groups},
            "projects": projects,
        }
    )


# Each user's rules go through these kinds in turn, from a random start: with 10 rules a user
# has about two of each, as people have (e.g. their packages' builds by mail, updates on IRC).
KINDS = ("owned-self", "related", "followed", "users", "group-owned", "owned-colleague")
# fmn's own kinds, per rule (times --new-kinds): few want every message of an application (an
# infrastructure or release engineer), or of a topic; more follow a forge project or two.
# 1.3% of the rules in all: at 100k rules, each application has ~3 such followers.
# (docs/performance.md, "fmn's own tracking rules", says why these shares.)
NEW_KIND_SHARES = (("applications", 0.001), ("topics", 0.002), ("projects-followed", 0.01))
# A topics rule names one topic an installed schema publishes, as a user picks it from the
# topics the web page counts: the topic itself ("org.fedoraproject.prod.bodhi.update.comment"),
# its family ("io.pagure.prod.pagure.pull-request.*") or the topic in any environment
# ("*.bodhi.update.comment"), at these shares (the rest: the topic itself).
TOPIC_FAMILY_SHARE = 0.3
TOPIC_ANY_ENV_SHARE = 0.1
FORGE_PROJECTS = 500  # pagure.io projects followed (the corpus' own among them)


def schema_topics() -> list[str]:
    """The topics the installed schemas publish, as production prefixes them."""
    from importlib.metadata import entry_points

    topics = set()
    for ep in entry_points(group="fedora.messages"):
        try:
            topic = getattr(ep.load(), "topic", None)
        except Exception:  # a schema that cannot load publishes nothing here
            continue
        if isinstance(topic, str) and topic:
            topics.add(production_topic(topic))
    return sorted(topics)


def topic_pattern(rng: random.Random, topic: str) -> str:
    """What a user who wants this topic writes: the topic, its family or any environment's."""
    draw = rng.random()
    if draw < TOPIC_FAMILY_SHARE:
        return topic.rsplit(".", 1)[0] + ".*"
    if draw < TOPIC_FAMILY_SHARE + TOPIC_ANY_ENV_SHARE:
        return "*." + topic.split(".", 3)[3]  # org.fedoraproject.prod.bodhi.x -> *.bodhi.x
    return topic


class RuleMaker:
    """Synthetic rules, each a pure function of its id: the index can be built from a stream
    (as the consumer reads rules from the database) and one user's rules made again."""

    def __init__(
        self, data: DirectoryData, parsed: list[ParsedMessage], new_kinds: float = 1.0
    ) -> None:
        self.users = list(data.users)
        self.groups = list(data.groups)
        self.packages = [p.split("/", 1)[1] for p in data.projects]
        self.agents = sorted({m.agent_name for m in parsed if m.agent_name})
        self.apps = sorted({m.app_name for m in parsed if m.app_name})
        if new_kinds:  # every application a schema is installed for (fmn's /applications)
            from fmn.api.applications import application_names

            self.apps = application_names()
        self.topics = schema_topics() if new_kinds else []
        real_projects = sorted(
            {key.split(":", 1)[1] for m in parsed for key in getattr(m, "forge_projects", ())}
        )
        self.projects = (real_projects + [f"project{i}" for i in range(FORGE_PROJECTS)])[
            :FORGE_PROJECTS
        ]
        self.new_kinds = new_kinds

    def new_kind(self, rng: random.Random, rule_id: int) -> dict[str, Any] | None:
        """fmn's own tracking rule for this rule, at their shares; None for most rules."""
        draw = rng.random()
        for kind, share in NEW_KIND_SHARES:
            if draw < share * self.new_kinds:
                if kind == "applications":
                    return {"name": kind, "params": [rng.choice(self.apps)]}
                if kind == "topics":
                    return {"name": kind, "params": [topic_pattern(rng, rng.choice(self.topics))]}
                names = rng.sample(self.projects, 2)
                return {"name": kind, "params": [{"forge": "pagure.io", "name": n} for n in names]}
            draw -= share * self.new_kinds
        return None

    def owner(self, rule_id: int) -> str:
        return self.users[rule_id % len(self.users)]

    def ids_of(self, username: str, count: int) -> range:
        return range(self.users.index(username) or len(self.users), count + 1, len(self.users))

    def fmn3_kind(self, rng: random.Random, owner: str, kind: str) -> dict[str, Any]:
        tracking: dict[str, Any]
        if kind == "owned-self":
            tracking = {"name": "artifacts-owned", "params": [owner]}
        elif kind == "owned-colleague":
            tracking = {"name": "artifacts-owned", "params": [rng.choice(self.users)]}
        elif kind == "related":
            tracking = {"name": "related-events", "params": None}
        elif kind == "followed":
            names = rng.sample(self.packages, 3)
            params = [{"name": n, "type": "rpms"} for n in names]
            tracking = {"name": "artifacts-followed", "params": params}
        elif kind == "group-owned":
            tracking = {"name": "artifacts-group-owned", "params": [rng.choice(self.groups)]}
        else:
            # The corpus' agents are a little more followed than the average user (1 rule in 100
            # follows one of them: ~8 followers each at 100k rules, against ~2 for the others).
            pool = self.agents if rng.random() < 0.01 else self.users
            tracking = {"name": "users-followed", "params": [rng.choice(pool)]}
        return tracking

    def rule(self, rule_id: int) -> Rule:
        rng = random.Random(rule_id)
        owner = self.owner(rule_id)
        first_kind = random.Random(owner).randrange(len(KINDS))
        kind = KINDS[(first_kind + rule_id // len(self.users)) % len(KINDS)]
        # With no new kinds, no extra draw: the rules are those of the benchmark before them.
        tracking = (self.new_kind(rng, rule_id) if self.new_kinds else None) or self.fmn3_kind(
            rng, owner, kind
        )
        filters: dict[str, Any] = {}
        if rng.random() < 0.3:
            filters["applications"] = rng.sample(APPS, 2)
        if rng.random() < 0.2:
            filters["severities"] = ["debug", "info"]
        if rng.random() < 0.1:
            filters["topic"] = rng.choice(["bodhi.*", "*.build.*", "pagure.pull-request.*"])
        if rng.random() < 0.3:
            filters["my_actions"] = True
        destinations = [{"protocol": "email", "address": f"{owner}@example.org"}]
        if rng.random() < 0.3:
            destinations.append({"protocol": "irc", "address": f"nick-{owner}"})
        return Rule.model_validate(
            {
                "id": rule_id,
                "name": f"rule {rule_id}",
                "user": {"name": owner},
                "tracking_rule": tracking,
                "generation_rules": [{"destinations": destinations, "filters": filters}],
            }
        )


def fan_out_by_kind(
    index: RuleIndex, parsed: list[ParsedMessage]
) -> dict[str, tuple[float, float]]:
    """Per tracking rule kind, per corpus message: candidate rules, and the notifications only
    that kind's rules asked for (what the kind adds)."""
    candidates: Counter[str] = Counter()
    alone: Counter[str] = Counter()
    for message in parsed:
        for rule_id in index.candidates(message):
            rule = index.rule(rule_id)
            if rule is not None:
                candidates[rule.tracking] += 1
        for match in index.match(message):
            kinds = {rule.tracking for rule in match.rules}
            if len(kinds) == 1:
                alone[kinds.pop()] += 1
    n = len(parsed)
    return {kind: (candidates[kind] / n, alone[kind] / n) for kind in sorted(candidates)}


def best_rate(run: Callable[[], object], n: int, repeats: int = 3) -> float:
    """Items per second of CPU time, best of a few runs (the machine may be shared)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        run()
        best = min(best, time.process_time() - start)
    return n / best


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def measure(
    count: int, n_messages: int, data: DirectoryData, raw: list[dict[str, Any]], new_kinds: float
) -> dict[str, Any]:
    parsed = [parse_message(m) for m in raw]
    maker = RuleMaker(data, parsed, new_kinds)
    directory = LocalDirectory(data)

    # Memory: the process after streaming the rules into an index (as the consumer reads them
    # from the database), and what tracemalloc sees the index itself hold.
    gc.collect()
    rss_before = rss_mb()
    index = RuleIndex(directory)
    await index.build(maker.rule(i) for i in range(1, count + 1))
    gc.collect()
    rss_after = rss_mb()
    tracemalloc.start()
    traced = RuleIndex(directory)
    await traced.build(maker.rule(i) for i in range(1, count + 1))
    index_mb = tracemalloc.get_traced_memory()[0] / 2**20
    tracemalloc.stop()
    del traced

    # Build time, from rules already read (their reading is the database's share).
    rules = [maker.rule(i) for i in range(1, count + 1)]
    start = time.process_time()
    await RuleIndex(directory).build(rules)
    build_s = time.process_time() - start
    del rules
    gc.collect()

    stream = [parsed[i % len(parsed)] for i in range(n_messages)]
    notifications = sum(len(index.match(m)) for m in stream)
    candidates = sum(len(index.candidates(m)) for m in stream)
    by_kind = fan_out_by_kind(index, parsed)

    def match_all() -> None:
        for message in stream:
            index.match(message)  # results dropped, as the consumer does once published

    raw_stream = [raw[i % len(raw)] for i in range(n_messages)]

    def parse_and_match_all() -> None:
        for data_in in raw_stream:
            index.match(parse_message(data_in))

    match_rate = best_rate(match_all, n_messages)
    parse_match_rate = best_rate(parse_and_match_all, n_messages)

    # Rendering, for the matched messages only, with fresh messages (no cached text).
    fresh = [parse_message(m) for m in raw]
    start = time.process_time()
    items = sum(len(build_work_items(m, index.match(m))) for m in fresh)
    render_per_item_us = (time.process_time() - start) / max(items, 1) * 1e6

    # One user's rules replaced (a rule renamed, one added), as on an fmn.rule.* message.
    durations = []
    for number, username in enumerate(random.Random(count).sample(maker.users, 100)):
        changed = [
            maker.rule(i).model_copy(update={"name": "renamed"})
            for i in maker.ids_of(username, count)
        ]
        changed.append(
            maker.rule(count + 1 + number).model_copy(update={"user": UserRef(name=username)})
        )
        start = time.process_time()
        await index.set_user_rules(username, changed)
        durations.append(time.process_time() - start)

    return {
        "rules": count,
        "build_s": build_s,
        "index_mb": index_mb,
        "rss_mb": rss_after,
        "rss_index_mb": rss_after - rss_before,
        "match_msg_s": match_rate,
        "parse_match_msg_s": parse_match_rate,
        "notifications_per_msg": notifications / n_messages,
        "candidates_per_msg": candidates / n_messages,
        # Matching's CPU time spread over what it produced.
        "match_us_per_notification": 1e6 / match_rate / (notifications / n_messages or 1),
        "by_kind": by_kind,
        "render_us_per_item": render_per_item_us,
        "update_ms_median": statistics.median(durations) * 1000,
        "update_ms_max": max(durations) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", default="1000,10000,100000")
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument(
        "--new-kinds", type=float, default=1.0, help="scale of fmn's own kinds' shares (0: none)"
    )
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # schema warnings from the corpus would swamp the figures

    raw = corpus_messages()
    data = synthetic_directory(random.Random(1), [parse_message(m) for m in raw])
    print(
        f"{len(raw)} corpus messages (with a schema), {len(data.users)} users, "
        f"{len(data.groups)} groups, {len(data.projects)} packages; {args.messages} messages/run"
    )
    header = (
        f"{'rules':>7} {'build s':>8} {'index MB':>9} {'RSS MB (+index)':>16} {'match msg/s':>12} "
        f"{'parse+match':>12} {'cand/msg':>8} {'notif/msg':>9} {'µs/notif':>8} {'render µs':>9} "
        f"{'update ms':>15}"
    )
    print(header)
    results = []
    for count in (int(c) for c in args.rules.split(",")):
        r = asyncio.run(measure(count, args.messages, data, raw, args.new_kinds))
        results.append(r)
        print(
            f"{r['rules']:>7} {r['build_s']:>8.2f} {r['index_mb']:>9.1f} "
            f"{r['rss_mb']:>8.0f} (+{r['rss_index_mb']:>4.0f}) "
            f"{r['match_msg_s']:>12,.0f} {r['parse_match_msg_s']:>12,.0f} "
            f"{r['candidates_per_msg']:>8.2f} {r['notifications_per_msg']:>9.2f} "
            f"{r['match_us_per_notification']:>8.3f} {r['render_us_per_item']:>9.0f} "
            f"{r['update_ms_median']:>6.2f} (max {r['update_ms_max']:.2f})"
        )
    for r in results:
        kinds = ", ".join(
            f"{kind} {cand:.2f}/{alone:.2f}" for kind, (cand, alone) in r["by_kind"].items()
        )
        print(
            f"{r['rules']} rules, per corpus message, by kind: candidates/notifications of "
            f"that kind's rules alone: {kinds}"
        )


if __name__ == "__main__":
    main()
