"""bench/photos.toml is consistent: its sets, splits and the list of test photos (no download: the builder,
``python bench/data.py photos``, checks the packages' files against it)."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

PHOTOS = tomllib.loads((Path(__file__).resolve().parent.parent / "bench" / "photos.toml").read_text())
SETS = {s["name"]: s for s in PHOTOS["set"]}
TEST = PHOTOS["test"]["files"]


def test_every_set_names_its_source_and_split():
    assert len(SETS) == len(PHOTOS["set"]), "set names repeat"
    for spec in SETS.values():
        assert {"name", "package", "folder", "files", "split", "licence"} <= spec.keys(), spec["name"]
        assert spec["split"] in ("train", "test"), spec["name"]
        assert spec["files"], spec["name"]


def test_the_test_list_names_each_test_set_and_only_those():
    assert len(TEST) == len(set(TEST)) >= 12
    listed_sets = {entry.split("/")[0] for entry in TEST}
    assert listed_sets == {name for name, spec in SETS.items() if spec["split"] == "test"}


def test_no_test_photo_can_be_trained_on():
    """A train set that reads the same folder of the same package as a test set must exclude its photos."""
    for entry in TEST:
        set_name, name = entry.split("/")
        source = SETS[set_name]
        for spec in SETS.values():
            if spec["split"] == "train" and (spec["package"], spec["folder"]) == (source["package"], source["folder"]):
                assert any(fnmatch.fnmatchcase(name, p) for p in spec.get("exclude", [])), (entry, spec["name"])
