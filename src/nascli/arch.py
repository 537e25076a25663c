"""The architecture as a value: a space name plus a canonical genotype, with an `arch_id`.

`arch_id` is the first 12 hex digits of the SHA-1 of the canonical JSON of
{"space", "genotype"}; it joins search, retrain, rank and correlate results.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
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

    def to_json(self, source: dict | None = None, **extra: Any) -> dict:
        doc = {"format": ARCH_FORMAT, "space": self.space, "arch_id": self.arch_id, "genotype": self.genotype}
        doc.update(extra)
        if source:
            doc["source"] = source
        return doc
