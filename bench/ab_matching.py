"""Before/after of RuleIndex.match in one process: another tree's fmn/rules/index.py (loaded
from its file, the rest of fmn from this tree) and this tree's, the same rules and messages,
timed in alternating rounds, so both see the same load.

    .venv/bin/python bench/ab_matching.py /path/to/other/tree [--new-kinds 1] [--rounds 11]

Only for trees whose index.py works with this tree's other modules (as a change to the index
alone does). Prints the minimum and median CPU time of matching per message, and the
notifications per message, which must be the same for both.
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
from fmn.rules.incoming import parse_message
from fmn.rules.index import RuleIndex


def other_index_module(tree: Path) -> Any:
    spec = importlib.util.spec_from_file_location("other_index", tree / "fmn/rules/index.py")
    if spec is None or spec.loader is None:
        raise SystemExit(f"no fmn/rules/index.py under {tree}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["other_index"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


async def compare(tree: Path, rules: int, new_kinds: float, rounds: int, n: int) -> None:
    raw = corpus_messages()
    parsed = [parse_message(m) for m in raw]
    data = synthetic_directory(random.Random(1), parsed)
    maker = RuleMaker(data, parsed, new_kinds)
    made = [maker.rule(i) for i in range(1, rules + 1)]
    indexes = {
        "other": other_index_module(tree).RuleIndex(LocalDirectory(data)),
        "this": RuleIndex(LocalDirectory(data)),
    }
    for index in indexes.values():
        await index.build(made)
    del made
    gc.collect()
    stream = [parsed[i % len(parsed)] for i in range(n)]
    produced = {k: sum(len(i.match(m)) for m in stream) / n for k, i in indexes.items()}
    times: dict[str, list[float]] = {k: [] for k in indexes}
    for _ in range(rounds):
        for name, index in indexes.items():
            match = index.match
            start = time.process_time()
            for message in stream:
                match(message)
            times[name].append((time.process_time() - start) / n * 1e6)
    for name, values in times.items():
        print(
            f"{name:>5} tree, new kinds x{new_kinds:g}: {min(values):.2f} µs/msg min, "
            f"{statistics.median(values):.2f} median ({rounds} rounds); "
            f"{produced[name]:.2f} notifications/msg"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree", type=Path, help="the other checkout (e.g. main's)")
    parser.add_argument("--rules", type=int, default=100_000)
    parser.add_argument("--new-kinds", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--messages", type=int, default=10_000)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    asyncio.run(compare(args.tree, args.rules, args.new_kinds, args.rounds, args.messages))


if __name__ == "__main__":
    main()
