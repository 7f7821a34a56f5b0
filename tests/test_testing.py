"""vqtok.testing, the kit plugin authors test with: the built-ins pass it, and each mistake a plugin author
made when writing one from the docs is caught with a message that names it."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from conftest import SAMPLES, TEST_PLUGINS

from vqtok.errors import VqtokError
from vqtok.plugin.registry import get_modality
from vqtok.testing import ContractError, check_family, check_modality

sys.path.insert(0, str(TEST_PLUGINS))
from vqtok_fsq import FSQ  # noqa: E402
from vqtok_sensor import SensorModality  # noqa: E402


@pytest.fixture(scope="module")
def sensor_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sensor")
    t = np.arange(600)[:, None]
    for i in range(3):
        np.save(folder / f"rec{i}.npy", (0.8 * np.sin(0.03 * (i + 1) * t + np.arange(3))).astype(np.float32))
    return folder


@pytest.mark.parametrize("name, data", [("audio", SAMPLES / "speech"), ("image", SAMPLES / "images")])
def test_the_builtin_modalities_pass_the_kit(name, data, tmp_path):
    check_modality(
        get_modality(name),
        data=data,
        workdir=tmp_path,
        options={"audio": {"segment_seconds": 0.25}, "image": {"size": 32}}[name],
    )
    assert (tmp_path / "check.safetensors").is_file()


def test_a_third_party_modality_passes_the_kit(sensor_data, tmp_path):
    check_modality(SensorModality(), data=sensor_data, workdir=tmp_path, options={"segment": 64})


class Loud(SensorModality):
    name = "loud"

    def load(self, path, options):
        return super().load(path, options) * 10  # not normalised to value_range


class Restless(SensorModality):
    name = "restless"

    def training_example(self, path, options, generator):
        return super().training_example(path, options, torch.Generator().manual_seed(int(torch.randint(99, ()))))


class Careless(SensorModality):
    name = "careless"

    def load(self, path, options):
        return torch.from_numpy(np.load(path, allow_pickle=False).astype(np.float32)).T.contiguous()  # no VqtokError


class Misdeclared(SensorModality):
    name = "misdeclared"
    suffixes = ("NPY",)
    long_inputs = "tiles"


@pytest.mark.parametrize(
    "modality, message",
    [
        (Loud(), "outside value_range"),
        (Restless(), "differs for the same generator seed"),
        (Careless(), "raise vqtok.errors.VqtokError naming the file"),
        (Misdeclared(), "suffixes must be lower-case with the dot"),
    ],
)
def test_each_mistake_is_caught_with_a_message_naming_it(modality, message, sensor_data, tmp_path):
    with pytest.raises(ContractError, match=f"modality '{modality.name}'") as caught:
        check_modality(modality, data=sensor_data, workdir=tmp_path, options={"segment": 64}, train=False)
    assert message in str(caught.value), str(caught.value)
    if isinstance(modality, Misdeclared):
        assert "long_inputs 'tiles' needs dims = 2" in str(caught.value)  # every problem, not the first only


def test_a_third_party_family_passes_and_a_broken_one_is_named(tmp_path):
    check_family(FSQ, options={"levels": [5, 5]}, workdir=tmp_path)

    class Overclaiming(FSQ):
        name = "overclaiming"

        def latents(self):
            specs = super().latents()
            return {k: type(v)(v.depth + 1, v.hop, v.codebook_sizes) for k, v in specs.items()}

    with pytest.raises(ContractError, match="overclaiming") as caught:
        check_family(Overclaiming, options={"levels": [5, 5]}, workdir=tmp_path / "broken")
    assert "latents() says" in str(caught.value)


def test_the_plugin_fixture_registers_in_process_and_cli_fixture_installs(vqtok_plugin, vqtok_cli, sensor_data):
    import vqtok_sensor

    with pytest.raises(VqtokError, match="unknown modality 'sensor'"):
        get_modality("sensor")
    vqtok_plugin(vqtok_sensor, "sensor")
    assert get_modality("sensor").name == "sensor"
    proc = vqtok_cli("plugins", "--json", plugins={"sensor": "vqtok_sensor"}, python_path=[TEST_PLUGINS])
    assert '"sensor"' in proc.stdout
