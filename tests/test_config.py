"""Typed configs: override parsing, precedence of the layers, validation errors, recipes, round trips."""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import vqtok
from vqtok import config as cfgmod
from vqtok.config import (
    ModelConfig,
    TrainConfig,
    from_dict,
    parse_override,
    read_recipe,
    resolve,
    resolve_data_path,
)
from vqtok.config.renamed import RenamedSettingWarning
from vqtok.errors import UsageError


@dataclass
class FakeOptions:
    size: int = 10
    rate: float = 1.5
    label: str = "plain"
    flag: bool = False
    shape: list[int] = field(default_factory=lambda: [1, 2])


class FakeModality:
    """Just what ``resolve`` needs from a modality."""

    name = "fake"
    config_class = FakeOptions

    def default_overrides(self) -> dict:
        return {"model": {"strides": [2, 2], "width": 32, "latent_dim": 16}, "fake": {"size": 20}}


def get_modality(name: str):
    if name != "fake":
        raise UsageError(f"no modality {name!r}")
    return FakeModality()


def run(recipe=None, overrides=(), flags=None):
    base = {"modality": "fake", "data": "somewhere"}
    return resolve({**base, **(recipe or {})}, list(overrides), flags, get_modality=get_modality)


# ---- parse_override ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, key, value, kind",
    [
        ("model.n_q=8", "model.n_q", 8, int),
        ("train.lr=1e-3", "train.lr", 1e-3, float),
        ("train.lr=0.5", "train.lr", 0.5, float),
        ("train.amp=false", "train.amp", False, bool),
        ("train.amp=true", "train.amp", True, bool),
        ("model.strides=[2, 4, 8]", "model.strides", [2, 4, 8], list),
        ("train.device=cuda:1", "train.device", "cuda:1", str),
        ("data=some/folder", "data", "some/folder", str),
        ('model.arch="vqvae"', "model.arch", "vqvae", str),
        (" model.n_q =3", "model.n_q", 3, int),
    ],
)
def test_parse_override_types(text, key, value, kind):
    k, v = parse_override(text)
    assert k == key
    assert v == value
    assert type(v) is kind


@pytest.mark.parametrize("text", ["model.n_q", "=3", " =3", ""])
def test_parse_override_rejects_malformed(text):
    with pytest.raises(UsageError):
        parse_override(text)


# ---- resolve: precedence ----------------------------------------------------------------------------


def test_builtin_defaults_when_nothing_is_set():
    c = run()
    assert c.model.codebook_size == ModelConfig().codebook_size
    assert c.train.steps == TrainConfig().steps
    assert c.options.label == FakeOptions().label
    assert c.modality == "fake"
    assert c.data == "somewhere"


def test_modality_defaults_override_builtin_defaults():
    c = run()
    assert ModelConfig().width != 32
    assert c.model.width == 32
    assert c.model.strides == [2, 2]
    assert c.options.size == 20  # the modality's defaults reach its own section too


def test_precedence_each_layer_beats_the_one_below():
    # width: builtin 64 < modality 32 < recipe 16 < override 8 < flag 4
    assert run({"model": {"width": 16}}).model.width == 16
    assert run({"model": {"width": 16}}, ["model.width=8"]).model.width == 8
    c = run({"model": {"width": 16}}, ["model.width=8"], {"model.width": 4})
    assert c.model.width == 4
    # the later override of two wins
    assert run(overrides=["model.width=8", "model.width=12"]).model.width == 12


def test_layers_merge_key_by_key_not_section_by_section():
    c = run({"model": {"width": 16}}, ["model.codebook_size=99"], {"train.steps": 7})
    assert c.model.width == 16  # recipe value survives an override of another key in the section
    assert c.model.codebook_size == 99
    assert c.model.latent_dim == 16  # modality default survives the recipe's [model] table
    assert c.model.strides == [2, 2]
    assert c.train.steps == 7


def test_none_flags_are_ignored():
    c = run({"train": {"steps": 33}}, flags={"train.steps": None, "modality": None})
    assert c.train.steps == 33
    assert c.modality == "fake"


def test_modality_can_come_from_a_flag():
    c = resolve({"data": "x"}, [], {"modality": "fake"}, get_modality=get_modality)
    assert c.modality == "fake"


def test_no_modality_is_a_usage_error():
    with pytest.raises(UsageError, match="modality"):
        resolve({"data": "x"}, [], None, get_modality=get_modality)


def test_override_reaches_the_modality_section():
    c = run({"fake": {"label": "recipe"}}, ["fake.label=override", "fake.rate=3"])
    assert c.options.label == "override"
    assert c.options.rate == 3.0


# ---- resolve: errors ----------------------------------------------------------------------------------


def test_unknown_key_error_names_the_key():
    with pytest.raises(UsageError, match=r"model\.codebok_size"):
        run(overrides=["model.codebok_size=3"])
    with pytest.raises(UsageError, match=r"fake\.colour"):
        run({"fake": {"colour": "red"}})
    with pytest.raises(UsageError, match=r"train\.stepz"):
        run(flags={"train.stepz": 3})


def test_unknown_section_error_names_it():
    with pytest.raises(UsageError, match="trian"):
        run({"trian": {"steps": 3}})
    with pytest.raises(UsageError, match="bogus"):
        run(overrides=["bogus=1"])


def test_options_of_another_family_say_which_arch_they_belong_to():
    with pytest.raises(UsageError, match=r"\[vae\] holds the options of model.arch 'vae'.*model.arch is 'vqvae'"):
        run({"vae": {"kl_weight": 2.0}})
    c = run({"model": {"arch": "vae"}, "vae": {"kl_weight": 2.0}})
    assert c.family_options.kl_weight == 2.0 and c.to_dict()["vae"]["kl_weight"] == 2.0


@pytest.mark.parametrize(
    "override, where",
    [
        ('model.width="wide"', "model.width"),
        ("model.width=2.5", "model.width"),
        ("model.width=true", "model.width"),  # a bool is not an int here
        ("model.kmeans_init=1", "model.kmeans_init"),
        ('train.lr="fast"', "train.lr"),
        ("train.lr=true", "train.lr"),
        ("train.device=3", "train.device"),
        ('model.strides=["a"]', "model.strides"),
        ('model.strides="2,2"', "model.strides"),
        ('fake.flag="yes"', "fake.flag"),
    ],
)
def test_wrong_types_are_rejected(override, where):
    with pytest.raises(UsageError) as info:
        run(overrides=[override])
    assert where in str(info.value)


def test_int_is_accepted_for_float_fields():
    c = run(overrides=["model.beta=1", "train.lr=2"])
    assert c.model.beta == 1.0 and type(c.model.beta) is float
    assert c.train.lr == 2.0 and type(c.train.lr) is float


def test_scalar_is_accepted_for_a_list_field():
    assert run(overrides=["model.strides=4"]).model.strides == [4]


def test_validation_rejects_impossible_values():
    with pytest.raises(UsageError, match="codebook_update"):
        run(overrides=['model.codebook_update="sgd"'])
    with pytest.raises(UsageError, match="steps"):
        run(overrides=["train.steps=0"])
    with pytest.raises(UsageError, match="ema_decay"):
        run(overrides=["model.ema_decay=1"])


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.res_blocks=-1", "model.res_blocks and kmeans_iters must not be negative"),
        ("model.kmeans_iters=-1", "model.res_blocks and kmeans_iters must not be negative"),
        ("train.warmup_steps=-5", "train.warmup_steps and grad_clip must not be negative"),
        ('train.device="tpu"', "train.device 'tpu'"),
        ('train.device="cudaX"', "train.device 'cudaX'"),
        ("model.codebook_size=100000000", "model.codebook_size must lie in [2, 1048576]"),
        ("model.n_q=0", "model.n_q must lie in [1, 64]"),
        ("model.max_width=0", "max_width must be positive"),
    ],
)
def test_every_setting_is_checked_for_range_before_training(override, message):
    with pytest.raises(UsageError) as info:
        run(overrides=[override])
    assert message in str(info.value)


def test_a_prior_run_checks_its_train_settings_too():
    from vqtok.prior.train import resolve_prior_run

    with pytest.raises(UsageError, match="train.steps must be at least 1"):
        resolve_prior_run(None, [], {"data": "x", "train.steps": 0})


def test_the_adversarial_loss_is_off_unless_asked_for_and_checked():
    assert not run().adversarial.enabled
    assert run(overrides=["adversarial.feature_weight=2"]).adversarial.enabled
    with pytest.raises(UsageError, match="must not be negative"):
        run(overrides=["adversarial.weight=-1"])
    with pytest.raises(UsageError, match="unknown key adversarial.wieght"):
        run(overrides=["adversarial.wieght=1"])


def test_data_must_be_a_string():
    with pytest.raises(UsageError, match="data"):
        run({"data": 5})


# ---- recipes -------------------------------------------------------------------------------------------


def test_read_recipe_resolves_data_relative_to_the_recipe(tmp_path, monkeypatch):
    folder = tmp_path / "recipes"
    folder.mkdir()
    recipe = folder / "r.toml"
    recipe.write_text(
        '# vqtok train --recipe r.toml\nmodality = "fake"\ndata = "imgs/train"\n[model]\ncodebook_size = 128\n'
    )
    monkeypatch.chdir(tmp_path)  # the working folder must not matter
    r = read_recipe(recipe)
    assert Path(r["data"]) == folder / "imgs" / "train"
    assert r["model"] == {"codebook_size": 128}
    assert r["modality"] == "fake"
    prior = folder / "prior.toml"  # a prior recipe's held-out folder too
    prior.write_text('data = "imgs/train"\nvalid = "imgs/valid"\n')
    assert Path(read_recipe(prior)["valid"]) == folder / "imgs" / "valid"


def test_read_recipe_takes_the_model_to_fine_tune_relative_to_it_but_keeps_a_default_name(tmp_path):
    recipe = tmp_path / "recipes" / "r.toml"
    recipe.parent.mkdir()
    recipe.write_text('modality = "fake"\ninit = "../models/speech.safetensors"\n')
    assert Path(read_recipe(recipe)["init"]) == recipe.parent / "../models/speech.safetensors"
    recipe.write_text('modality = "fake"\ninit = "@audio"\n')
    assert read_recipe(recipe)["init"] == "@audio"


def test_read_recipe_keeps_an_absolute_data_path(tmp_path):
    target = tmp_path / "elsewhere"
    recipe = tmp_path / "sub" / "r.toml"
    recipe.parent.mkdir()
    recipe.write_text(f'modality = "fake"\ndata = "{target.as_posix()}"\n')
    assert Path(read_recipe(recipe)["data"]) == target


def test_read_recipe_at_samples_means_the_shipped_samples(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text('modality = "fake"\ndata = "@samples/images"\n')
    data = Path(read_recipe(recipe)["data"])
    assert data == Path(vqtok.__file__).parent / "samples" / "images"  # the samples shipped in the package
    assert data.is_dir() and any(data.iterdir())
    assert resolve_data_path("@samples/speech", base=tmp_path) == cfgmod.SAMPLES_DIR / "speech"


def test_broken_toml_is_a_usage_error_naming_the_file(tmp_path):
    recipe = tmp_path / "broken.toml"
    recipe.write_text('modality = "fake"\n[model\ncodebook_size = = 3\n')
    with pytest.raises(UsageError, match="broken.toml"):
        read_recipe(recipe)


def test_binary_recipe_is_a_usage_error(tmp_path):
    recipe = tmp_path / "binary.toml"
    recipe.write_bytes(b"\xff\xfe\x00\x81garbage")
    with pytest.raises(UsageError, match="binary.toml"):
        read_recipe(recipe)


def test_missing_recipe_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="nope.toml"):
        read_recipe(tmp_path / "nope.toml")


def test_recipe_then_resolve(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text('modality = "fake"\ndata = "d"\n[fake]\nrate = 2\n[train]\nsteps = 5\n')
    c = resolve(read_recipe(recipe), ["train.steps=6"], None, get_modality=get_modality)
    assert c.train.steps == 6
    assert c.options.rate == 2.0
    assert Path(c.data) == tmp_path / "d"


# ---- stored form ----------------------------------------------------------------------------------------


def test_from_dict_round_trips_to_dict():
    c = run(
        {"fake": {"label": "x", "shape": [3]}, "about": "trained on x"},
        ["model.n_q=3", "train.lr=0.01", "train.amp=false", "train.lr_decay=cosine"],
    )
    again = from_dict(c.to_dict(), get_modality)
    assert again == c
    via_json = from_dict(json.loads(json.dumps(c.to_dict())), get_modality)
    assert via_json == c
    assert via_json.model.n_q == 3 and via_json.train.amp is False and via_json.options.shape == [3]


def test_about_names_the_settings_a_run_changes_from_its_recipe():
    recipe = {"about": "IWAE (k = 50)", "train": {"steps": 100}}
    assert run(recipe).about == "IWAE (k = 50)"
    same = run(recipe, ["train.steps=100"], {"train.device": "cpu", "data": "somewhere"})
    assert same.about == "IWAE (k = 50)"  # the recipe's own values, where it ran: the model it describes
    changed = run(recipe, ["model.n_q=3", "train.steps=50"], {"train.steps": 7, "data": "elsewhere"})
    assert changed.about == "IWAE (k = 50) (changed from the recipe: model.n_q=3, train.steps=7, data=elsewhere)"
    assert run(recipe, ["about=mine", "model.n_q=3"]).about == "mine"  # given on the command line: as given
    assert run(None, ["model.n_q=3"]).about == ""  # no recipe words to qualify


def test_about_must_be_text_and_lr_decay_a_known_schedule():
    with pytest.raises(UsageError, match="about must be text"):
        run({"about": 3})
    with pytest.raises(UsageError, match="lr_decay"):
        run(overrides=["train.lr_decay=linear"])


@pytest.mark.parametrize(
    "recipe, overrides, message",
    [
        ({"modality": {"mod": {"ld": 0}}}, [], "modality must be text, got {'mod'"),  # found by the fuzzer (TOML)
        ({}, ["model=.se=28"], "model is a section of settings ([model] in a recipe, model.KEY=VALUE"),  # (override)
        ({"data": ["a", "b"]}, [], "data must be text"),
        ({"init": 3}, [], "init must be text"),
        ({"train": 5}, [], "train is a section of settings"),
    ],
)
def test_a_setting_of_the_wrong_shape_is_a_usage_error(recipe, overrides, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        run(recipe, overrides)


def test_from_dict_rejects_unknown_keys():
    d = run().to_dict()
    d["model"]["mystery"] = 1
    with pytest.raises(UsageError, match="model.mystery"):
        from_dict(d, get_modality)


def test_a_data_path_of_a_user_that_does_not_exist_is_a_usage_error(tmp_path):
    """Found by the fuzzer: ``data = "~data=  "`` ended in pathlib's RuntimeError."""
    from vqtok.config import read_recipe

    (tmp_path / "r.toml").write_text('modality = "audio"\ndata = "~no-such-user-here/x"\n')
    with pytest.raises(UsageError, match="no home folder for '~no-such-user-here'"):
        read_recipe(tmp_path / "r.toml")


# ---- renamed settings ---------------------------------------------------------------------------------


def test_old_setting_names_in_a_recipe_or_override_are_read_under_the_new_ones_with_a_warning():
    with pytest.warns(RenamedSettingWarning) as caught:
        c = run({"model": {"channels": 16, "max_channels": 48}, "adversarial": {"channels": 8}})
    assert (c.model.width, c.model.max_width, c.adversarial.width) == (16, 48, 8)
    assert sorted(str(w.message).split(" in ")[0] for w in caught) == [
        "adversarial.channels is now called adversarial.width",
        "model.channels is now called model.width",
        "model.max_channels is now called model.max_width",
    ]
    with pytest.warns(RenamedSettingWarning, match=r"the override model\.max_channels=40"):
        assert run(overrides=["model.max_channels=40"]).model.max_width == 40
    # an old name in the recipe and the new one in an override: the override wins as always
    with pytest.warns(RenamedSettingWarning):
        assert run({"model": {"channels": 16}}, ["model.width=8"]).model.width == 8


def test_a_plugins_defaults_under_an_old_name_are_read_with_a_warning_naming_them():
    class OldPlugin(FakeModality):
        def default_overrides(self) -> dict:
            return {"model": {"strides": [2], "channels": 24}}

    with pytest.warns(RenamedSettingWarning, match="the fake modality's defaults"):
        c = resolve({"modality": "fake"}, get_modality=lambda name: OldPlugin())
    assert c.model.width == 24


def test_an_old_and_a_new_name_of_one_setting_together_are_a_usage_error():
    with pytest.raises(UsageError, match=r"model\.channels and model\.width both given in the recipe"):
        run({"model": {"channels": 16, "width": 8}})


def test_settings_stored_under_old_names_are_read_silently():
    stored = run().to_dict()
    stored["model"]["channels"] = stored["model"].pop("width")
    stored["adversarial"]["channels"] = stored["adversarial"].pop("width")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a model file's owner cannot edit it: no warning
        c = from_dict(stored, get_modality)
    assert c.to_dict() == run().to_dict()
