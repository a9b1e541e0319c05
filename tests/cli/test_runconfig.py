"""Layered run configuration: TOML file, --set pairs, precedence and clear errors."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from gantransfer.config import build_config, field
from gantransfer.runconfig import RunSpec

FIELDS = {"model": {"ngf", "norm", "seed_like", "crop_size"}, "train": {"steps", "seed", "batch_size"},
          "data": {"root", "crop_size", "seed"}}


def test_toml_sections_are_read(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('architecture = "cyclegan"\n[model]\nngf = 8\n[train]\nsteps = 5\n'
                    '[data]\ncrop_size = 32\n')
    spec = RunSpec.from_toml(path)
    assert spec.architecture == "cyclegan"
    assert (spec.model, spec.train, spec.data) == ({"ngf": 8}, {"steps": 5}, {"crop_size": 32})


def test_toml_unknown_top_level_key_names_the_file(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("[modle]\nngf = 8\n")
    with pytest.raises(ValueError, match=r"run.toml: unknown key\(s\) 'modle'"):
        RunSpec.from_toml(path)


def test_invalid_toml_names_file_and_position(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[model]\nngf = = 8\n")
    with pytest.raises(ValueError, match=r"bad.toml is not valid TOML.*line 2"):
        RunSpec.from_toml(path)


def test_sets_parse_values_and_route_bare_keys():
    spec = RunSpec().apply_sets(["ngf=16", "steps=3", "data.crop_size=24", "norm=instance",
                                 "model.seed_like=[1, 2]"], fields=FIELDS)
    assert spec.model == {"ngf": 16, "norm": "instance", "seed_like": [1, 2]}
    assert spec.train == {"steps": 3}
    assert spec.data == {"crop_size": 24}


def test_ambiguous_bare_key_asks_for_a_prefix():
    with pytest.raises(ValueError, match=r"'seed' is a field of train and data; prefix it"):
        RunSpec().apply_sets(["seed=1"], fields=FIELDS)


def test_unknown_key_lists_the_valid_fields():
    with pytest.raises(ValueError, match=r"no config field 'ngff'.*model: crop_size, ngf, norm"):
        RunSpec().apply_sets(["ngff=1"], fields=FIELDS)
    with pytest.raises(ValueError, match=r"train has no field 'ngf'"):
        RunSpec().apply_sets(["train.ngf=1"], fields=FIELDS)
    with pytest.raises(ValueError, match="KEY=VALUE"):
        RunSpec().apply_sets(["ngf"], fields=FIELDS)


def test_later_sources_override_earlier_and_architectures_must_agree():
    base = RunSpec("cyclegan", {"ngf": 8, "norm": "batch"}, {"steps": 10}, {})
    top = RunSpec(None, {"ngf": 16}, {"steps": 20}, {"root": "d"})
    merged = base.merged(top)
    assert merged.architecture == "cyclegan"
    assert merged.model == {"ngf": 16, "norm": "batch"}
    assert merged.train == {"steps": 20} and merged.data == {"root": "d"}
    assert base.model["ngf"] == 8  # inputs are not mutated
    with pytest.raises(ValueError, match="architecture mismatch"):
        base.merged(RunSpec("dcgan"))


def test_key_of_model_and_data_sets_both():
    spec = RunSpec().apply_sets(["crop_size=64"], fields=FIELDS)
    assert spec.model == {"crop_size": 64} and spec.data == {"crop_size": 64}


# -- the one config builder (gantransfer.config.build_config) ---------------------------------
@dataclass(kw_only=True)
class _Config:
    widths: tuple[int, ...] = field((4, 8), help="a tuple field")
    name: str = field("x", help="a plain field")


def test_build_config_turns_lists_into_tuples_and_names_unknown_fields():
    built = build_config(_Config, {"widths": [1, 2, 3], "name": "y"})
    assert built == _Config(widths=(1, 2, 3), name="y") and isinstance(built.widths, tuple)
    with pytest.raises(TypeError, match=r"'nmae' for the toy config \('nmae': did you mean "
                                        r"'name'\?\). Valid fields: name, widths"):
        build_config(_Config, {"nmae": "y"}, owner="the toy config")


def test_every_way_in_builds_configs_the_same_way(tmp_path):
    """gantransfer.get, a checkpoint's stored config and gtx train's layers all come through
    build_config: a list for a tuple field (what TOML and JSON give) becomes a tuple everywhere."""
    import gantransfer
    from gantransfer.cli.train import build_run
    from gantransfer.testing import make_fake_data

    @gantransfer.register("tuple_toy")
    class TupleToy(gantransfer.GANModel):
        Config = _Config
        data_kind = "single"

    try:
        assert gantransfer.get("tuple_toy", widths=[2]).config.widths == (2,)
        data = make_fake_data("single", tmp_path / "d", size=8, n=2)
        model, _, train = build_run("tuple_toy", run_dir=tmp_path / "run", data=str(data),
                                    sets=["widths=[3, 4]", "steps=1"])
        assert model.config.widths == (3, 4) and train.steps == 1
    finally:
        gantransfer.unregister("tuple_toy")
