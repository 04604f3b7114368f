"""Summarise py-spy's collapsed stacks (`--format raw`): the functions with the most
samples, inclusive (anywhere on the stack) and self (at the top).

    python bench/pipeline/stacks.py PROFILE.txt [--top 40] [--match waybill]
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("path", type=Path)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--match", default="", help="only frames whose text contains this")
    args = parser.parse_args()
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in args.path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        for frame in set(frames):
            if args.match in frame:
                inclusive[frame] += n
        if args.match in frames[-1]:
            own[frames[-1]] += n
    print(f"{total} samples")
    print("\ninclusive:")
    for frame, n in inclusive.most_common(args.top):
        print(f"{100 * n / total:5.1f}%  {frame}")
    print("\nself:")
    for frame, n in own.most_common(args.top):
        print(f"{100 * n / total:5.1f}%  {frame}")


if __name__ == "__main__":
    main()
