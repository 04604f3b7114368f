"""Where each member of an archive belongs: the history archive's own layout (a plain
archive) or a BagIt bag's, and nothing outside it."""

from __future__ import annotations

from waybill_export_worker.history_archive.codec import (
    CRATE_MEMBER,
    DATASET_MEMBER,
    DATASETS_DIR,
    SNAPSHOT_MEMBER,
    TAR_MEMBERS,
    TAR_WORKFLOWS_MEMBER,
    WORKFLOW_MEMBER,
    WORKFLOWS_DIR,
)
from waybill_export_worker.history_archive.safety import UnsafeArchive, check_member_name

CRATE_LAYOUT = frozenset({SNAPSHOT_MEMBER, CRATE_MEMBER})
TAR_LAYOUT = frozenset({*TAR_MEMBERS, TAR_WORKFLOWS_MEMBER})
# A bag's tag files. Only the sha256 manifests are checked (the ones Waybill writes);
# manifests of other algorithms that another tool added are allowed and left alone.
BAG_TAGS = frozenset(
    {"bagit.txt", "bag-info.txt"}
    | {
        f"{kind}-{alg}.txt"
        for kind in ("manifest", "tagmanifest")
        for alg in ("md5", "sha1", "sha256", "sha512")
    }
)
BAG_PAYLOAD = "data/"


def _in_layout(name: str, layout: frozenset[str]) -> bool:
    return (
        name in layout
        or (name.startswith(DATASETS_DIR) and DATASET_MEMBER.fullmatch(name) is not None)
        or (name.startswith(WORKFLOWS_DIR) and WORKFLOW_MEMBER.fullmatch(name) is not None)
    )


class Placement:
    """Where each member belongs: the archive's own layout (a plain archive), or a
    BagIt bag, whose one top-level directory holds tag files and, under data/, the tar
    layout. Members are named by their place in the layout from here on."""

    def __init__(self, layout: frozenset[str]) -> None:
        self.layout = layout
        self.bag: str | None = None  # the bag's directory
        self.plain = False

    def place(self, name: str) -> tuple[str, str]:
        """("layout" | "tag", the name within the layout or the bag)."""
        check_member_name(name)
        top, _, rest = name.partition("/")
        if _in_layout(name, self.layout) or not rest:
            if self.bag is not None:
                raise UnsafeArchive(f"member {name!r} is outside the bag's directory")
            if not _in_layout(name, self.layout):
                raise UnsafeArchive(f"member {name!r} is not part of the history archive layout")
            self.plain = True
            return "layout", name
        if self.plain or (self.bag is not None and top != self.bag):
            raise UnsafeArchive(f"member {name!r} is not part of the history archive layout")
        self.bag = top
        if rest in BAG_TAGS:
            return "tag", rest
        payload = rest.removeprefix(BAG_PAYLOAD)
        if payload == rest or not _in_layout(payload, TAR_LAYOUT):
            raise UnsafeArchive(f"member {name!r} is not part of the history archive layout")
        return "layout", payload
