"""Recipes that chain: ``init = "other.toml"`` trains that recipe first, then starts from its model.

A model may be built in stages (a reconstruction stage, then a fine-tune at a lower learning rate or with
the adversarial loss). When a recipe's ``init`` names another recipe, ``vqtok train --recipe last.toml
-o model.safetensors`` builds the whole chain from data: each earlier recipe's model is written beside
the output, named after its recipe (``speech-8k.toml`` -> ``speech-8k.safetensors``), and reused when a
finished model made by that same recipe is already there. ``--resume`` continues whichever stage was
interrupted. Each model records the model it started from (:func:`lineage`), so a file says which
recipes built it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .. import config as cfg
from ..errors import UsageError
from ..files.model import read_model
from .loop import RunPaths


def names_recipe(init: object) -> bool:
    return isinstance(init, str) and init.endswith(".toml")


def stage_model(recipe: Path, out: Path) -> Path:
    """Where the model of chain stage ``recipe`` goes when ``out`` is the last stage's model."""
    return out.parent / f"{recipe.stem}.safetensors"


def comparable(settings: dict) -> dict:
    """A run's settings without what does not change the model it trains (where it ran, and how many
    processes loaded its data)."""
    settings = {**settings, "train": dict(settings.get("train", {}))}
    for key in ("device", "workers"):
        settings["train"].pop(key, None)
    return settings


def made_by(model: Path, config: cfg.RunConfig, get_modality) -> bool:
    """Whether ``model`` is a finished training of exactly ``config``."""
    if not model.is_file():
        return False
    meta = read_model(model, tensors=False).meta
    if not meta.get("training", {}).get("completed"):
        return False
    stored = cfg.from_dict(meta.get("config", {}), get_modality).to_dict()
    return comparable(stored) == comparable(config.to_dict())


def build_stages(
    recipe: dict,
    out: Path,
    train: Callable[[cfg.RunConfig, Path], None],
    say: Callable[[str], None],
    get_modality,
    device: str | None = None,
    resume: bool = False,
    seen: tuple[Path, ...] = (),
) -> dict:
    """``recipe`` (a read recipe) with an ``init`` that names a recipe replaced by that recipe's model,
    trained first by ``train(config, model_path)`` unless a finished one made by it is there (recursively:
    a stage may start from a stage). ``device`` is the run's ``--device``; with ``resume`` an interrupted
    stage continues. A file in a stage's place that the stage did not make is never overwritten."""
    if not names_recipe(recipe.get("init")):
        return recipe
    path = Path(recipe["init"]).resolve()
    if path in seen:
        raise UsageError(f"init {path}: the recipes' init entries form a loop ({' -> '.join(p.name for p in seen)})")
    if not path.is_file():
        raise UsageError(f"init {recipe['init']}: no such recipe")
    stage = build_stages(cfg.read_recipe(path), out, train, say, get_modality, device, resume, (*seen, path))
    config = cfg.resolve(stage, [], {"train.device": device}, get_modality)
    model = stage_model(path, out)
    if model.resolve() == out.resolve():
        raise UsageError(f"{out}: the chain's stage {path.name} would write the same file; name -o otherwise")
    if made_by(model, config, get_modality):
        say(f"stage {path.name}: {model} is built by it already; starting from it")
    elif model.exists() and not (resume and RunPaths.for_model(model).checkpoint.exists()):
        raise UsageError(
            f"{model}: the chain's stage {path.name} writes this file, but the one there is not a "
            "finished model of that recipe; add --resume to continue its interrupted run, or move "
            "the file away to train the stage anew"
        )
    else:
        say(f"stage {path.name}: training {model}")
        train(config, model)
    return {**recipe, "init": str(model)}


def lineage(init: Path) -> dict:
    """What a fine-tuned model records of the model it started from: its hash, settings and training,
    and what that one started from."""
    meta = read_model(init, tensors=False).meta
    training = meta.get("training", {})
    return {
        "file": str(init),
        "config": meta.get("config", {}),
        "steps": training.get("steps"),
        "completed": training.get("completed"),
        **({"started_from": training["started_from"]} if "started_from" in training else {}),
    }
