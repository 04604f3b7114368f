"""Column names as an output format allows them."""

from __future__ import annotations

from collections.abc import Callable


def valid_names(names: list[str], fix: Callable[[str], str]) -> list[str]:
    """Each column name as a format allows it: `fix` makes a name valid; names it
    leaves as they are are kept, the others take a suffix where that name is taken."""
    taken = {name for name in names if fix(name) == name}
    result = []
    for name in names:
        candidate = fix(name)
        if candidate != name:
            base, n = candidate, 1
            while candidate in taken:
                n += 1
                candidate = f"{base}_{n}"
            taken.add(candidate)
        result.append(candidate)
    return result
