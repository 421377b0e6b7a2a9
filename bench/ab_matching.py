"""Two RuleIndex.match set-ups side by side in one process, the same messages, timed in
alternating rounds so that both see the same load:

    .venv/bin/python bench/ab_matching.py --other-tree /path/to/main [--new-kinds 1]
        another tree's fmn/rules/index.py (loaded from its file, the rest of fmn from this
        tree) against this tree's, on the same rules (or, with --other-new-kinds 0, the other
        tree on rules without fmn's own kinds): a before/after of a change to the index alone
        (the other index runs on this tree's other modules);
    .venv/bin/python bench/ab_matching.py --new-kinds 1
        this tree's index on rules without fmn's own kinds against rules with them
        (bench_matching's mix scaled by --new-kinds).

With --parse, each set-up also parses the raw messages (with the other tree's
fmn/rules/incoming.py for the other tree) and the time is parse + match, as the consumer pays it.

Prints per set-up the minimum and median CPU time of matching per message, the notifications
per message, and the CPU time per notification.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import logging
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_matching import RuleMaker, corpus_messages, synthetic_directory
from fmn.directory.local import LocalDirectory
from fmn.rules.incoming import ParsedMessage, parse_message
from fmn.rules.index import RuleIndex


def other_module(tree: Path, name: str) -> Any:
    """The other tree's fmn/rules/<name>.py, its imports from this tree."""
    spec = importlib.util.spec_from_file_location(f"other_{name}", tree / f"fmn/rules/{name}.py")
    if spec is None or spec.loader is None:
        raise SystemExit(f"no fmn/rules/{name}.py under {tree}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[f"other_{name}"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


async def compare(args: argparse.Namespace) -> None:
    raw = corpus_messages()
    parsed = [parse_message(m) for m in raw]
    data = synthetic_directory(random.Random(1), parsed)

    async def index_of(cls: Any, new_kinds: float) -> Any:
        maker = RuleMaker(data, parsed, new_kinds)
        index = cls(LocalDirectory(data))
        await index.build(maker.rule(i) for i in range(1, args.rules + 1))
        return index

    parsers = {}
    if args.other_tree:
        other = other_module(args.other_tree, "index").RuleIndex
        indexes = {
            "other tree": await index_of(other, args.other_new_kinds),
            "this tree": await index_of(RuleIndex, args.new_kinds),
        }
        parsers = {
            "other tree": other_module(args.other_tree, "incoming").parse_message,
            "this tree": parse_message,
        }
    else:
        indexes = {
            "no new kinds": await index_of(RuleIndex, 0),
            f"new kinds x{args.new_kinds:g}": await index_of(RuleIndex, args.new_kinds),
        }
    gc.collect()
    stream = [parsed[i % len(parsed)] for i in range(args.messages)]
    raw_stream = [raw[i % len(raw)] for i in range(args.messages)]
    times: dict[str, list[float]] = {name: [] for name in indexes}
    for _ in range(args.rounds):
        for name, index in indexes.items():
            if args.parse:
                parse = parsers.get(name, parse_message)
                times[name].append(parse_match_time(index, parse, raw_stream))
            else:
                times[name].append(match_time(index, stream))
    what = "parse + match" if args.parse else "match"
    for name, index in indexes.items():
        produced = sum(len(index.match(m)) for m in stream) / len(stream)
        best = min(times[name])
        print(
            f"{name:>16}: {what} {best:.2f} µs/msg min, "
            f"{statistics.median(times[name]):.2f} median "
            f"({args.rounds} rounds); {produced:.2f} notifications/msg, "
            f"{best / produced:.3f} µs/notification (min)"
        )


def match_time(index: Any, stream: list[ParsedMessage]) -> float:
    """CPU µs per message of matching the stream once."""
    match = index.match
    start = time.process_time()
    for message in stream:
        match(message)
    return (time.process_time() - start) / len(stream) * 1e6


def parse_match_time(index: Any, parse: Any, raw_stream: list[dict[str, Any]]) -> float:
    """CPU µs per message of parsing and matching the stream once (fresh messages: a matched
    one's body is checked against its schema, as in the consumer)."""
    match = index.match
    start = time.process_time()
    for data in raw_stream:
        match(parse(data))
    return (time.process_time() - start) / len(raw_stream) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--other-tree", type=Path, help="another checkout (e.g. main's)")
    parser.add_argument("--rules", type=int, default=100_000)
    parser.add_argument("--new-kinds", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument(
        "--other-new-kinds", type=float, help="the other tree's rules' scale (default: the same)"
    )
    parser.add_argument("--parse", action="store_true", help="time parse + match")
    args = parser.parse_args()
    if args.other_new_kinds is None:
        args.other_new_kinds = args.new_kinds
    logging.disable(logging.WARNING)
    asyncio.run(compare(args))


if __name__ == "__main__":
    main()
