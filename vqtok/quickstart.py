"""``vqtok quickstart``: train the quickstart recipes on the shipped samples, encode and decode one file
of each, and say where everything is."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from . import config as cfg
from .codec import Tokenizer
from .errors import VqtokError
from .files.atomic import atomic_path
from .files.codes import code_bytes
from .plugin.registry import get_modality
from .train import Trainer

RECIPES = Path(__file__).resolve().parent.parent / "recipes"
DEMOS = {"audio": cfg.SAMPLES_DIR / "speech" / "demo-thanks.wav", "image": cfg.SAMPLES_DIR / "images" / "chelsea.png"}


def run_quickstart(out: Path, steps: int | None, console: Console) -> None:
    if not RECIPES.is_dir():
        raise VqtokError(f"{RECIPES}: recipes folder not found; run quickstart from a checkout of the repository")
    lines = []
    for name, stem in (("audio", "speech"), ("image", "images")):
        recipe = RECIPES / f"quickstart-{name}.toml"
        console.rule(f"[bold]{name}: {recipe.name}")
        config = cfg.resolve(cfg.read_recipe(recipe), flags={"train.steps": steps}, get_modality=get_modality)
        trainer = Trainer(config, get_modality(name), out / f"{stem}.safetensors", console)
        result = trainer.run()
        tok = Tokenizer.load(result.paths.model)
        demo = DEMOS[name]
        codes = tok.encode_file(demo)
        code_path = out / f"{demo.stem}.npz"
        with atomic_path(code_path) as tmp:
            tmp.write_bytes(code_bytes(codes, as_npz=True))
        decoded = out / f"{demo.stem}.decoded{demo.suffix}"
        tok.decode_to_file(codes, decoded)
        final = result.summary["final"]
        lines += [
            f"[bold]{name}[/]: model {result.paths.model} ({result.step} steps, {result.summary['seconds']:.0f} s, "
            f"loss {final['loss']:.4f})",
            f"  codes {code_path} (shape {tuple(codes.arrays['codes'].shape)}), decoded {decoded} from {demo}",
            f"  preview {result.paths.preview}, metrics {result.paths.metrics}",
        ]
    console.rule("[bold]quickstart done")
    for line in lines:
        console.print(line, highlight=False)
    console.print(
        f"Next: vqtok info {out / 'speech.safetensors'}; vqtok encode --model "
        f"{out / 'speech.safetensors'} YOUR.wav > codes.npy",
        highlight=False,
    )
