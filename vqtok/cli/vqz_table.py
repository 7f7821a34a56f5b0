"""``vqtok info FILE.vqz``: what a compressed file holds, read from its header alone (no model needed)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ..files.vqz import read_container


def container_facts(path: Path) -> dict:
    """The header of a .vqz, its size, and its bits per second (audio) or per pixel (images) where the
    header's meta gives the sample rate or the image size."""
    box = read_container(path)
    size = Path(path).stat().st_size
    facts = {"file": str(path), "bytes": size, "payload_bytes": sum(map(len, box.chunks)), **box.header}
    meta = box.header.get("meta") or {}
    extent = meta.get("size") or []
    if "sample_rate" in meta and extent:
        facts["seconds"] = extent[-1] / meta["sample_rate"]
        facts["bits_per_second"] = 8 * size / facts["seconds"]
    elif len(extent) >= 2:
        facts["bits_per_pixel"] = 8 * size / math.prod(extent[-2:])
    return facts


def describe_container(path: Path, as_json: bool, console: Console) -> None:
    facts = container_facts(path)
    if as_json:
        print(json.dumps(facts, indent=2, sort_keys=True))
        return
    table = Table(title=str(path), show_header=False)
    table.add_column("what")
    table.add_column("value")
    coder = facts.get("coder")
    rows = [
        ("model hash", facts.get("model")),
        ("modality", facts.get("modality")),
        (
            "coder",
            f"{coder}"
            + (
                f" (prior {facts['prior']}, label index {facts['label']})"
                if "label" in facts
                else f" (prior {facts['prior']})"
                if "prior" in facts
                else " (log2 K per code)"
            ),
        ),
        ("codes", ", ".join(f"{name} {shape}" for name, shape in facts.get("shapes", {}).items())),
        ("chunks", f"{facts.get('chunks')} of at most {facts.get('window')} positions per axis"),
        ("size", f"{facts['bytes']} bytes ({facts['payload_bytes']} coded, the rest header and framing)"),
    ]
    if "bits_per_second" in facts:
        rows.append(("rate", f"{facts['bits_per_second']:.1f} bit/s over {facts['seconds']:.2f} s"))
    if "bits_per_pixel" in facts:
        rows.append(("rate", f"{facts['bits_per_pixel']:.4f} bits per pixel"))
    for what, value in rows:
        table.add_row(what, str(value))
    console.print(table)
