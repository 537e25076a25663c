"""The architecture as a value: a space name plus a canonical genotype, with an `arch_id`.

`arch_id` is the first 12 hex digits of the SHA-1 of the canonical JSON of
{"space", "genotype"}; it joins search, retrain, rank and correlate results.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ARCH_FORMAT = "nascli.arch/1"


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class Arch:
    space: str
    genotype: dict = field(compare=False, hash=False)
    arch_id: str = field(init=False)

    def __post_init__(self):
        digest = hashlib.sha1(canonical_json({"space": self.space, "genotype": self.genotype}).encode())
        object.__setattr__(self, "arch_id", digest.hexdigest()[:12])

    @classmethod
    def from_json(cls, doc: dict | str | Path) -> Arch:
        """The Arch an arch.json describes: a parsed document, its JSON text, or its path. UserError (with the
        CLI's message) when it is malformed or its genotype is not valid in its space."""
        from nascli.arch_io import arch_from_json, read_arch_file
        from nascli.errors import UserError

        if isinstance(doc, dict):
            return arch_from_json(doc, "the arch.json document")
        if isinstance(doc, Path) or not str(doc).lstrip().startswith("{"):
            return read_arch_file(Path(doc))
        try:
            return arch_from_json(json.loads(doc), "the arch.json text")
        except json.JSONDecodeError as e:
            raise UserError(f"the arch.json text is not valid JSON ({e.msg}, line {e.lineno})") from None

    def to_json(self, source: dict | None = None, **extra: Any) -> dict:
        doc = {"format": ARCH_FORMAT, "space": self.space, "arch_id": self.arch_id, "genotype": self.genotype}
        doc.update(extra)
        if source:
            doc["source"] = source
        return doc
