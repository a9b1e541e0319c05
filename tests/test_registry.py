"""The registry through the real entry-point machinery (fake dist-info folders on sys.path)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

import pytest
from torch import nn

import gantransfer
from gantransfer.config import field
from gantransfer.registry import PluginLoadError, UnknownPluginError

GOOD_PLUGIN = '''
from dataclasses import dataclass
from torch import nn
import gantransfer
from gantransfer.config import field
from gantransfer.model import ExportSpec, GANModel


class Tiny(GANModel):
    """A tiny third-party architecture for registry tests."""

    @dataclass(kw_only=True)
    class Config:
        width: int = field(4, help="channels of the only conv")
        mode: str = field("a", help="a mode", choices=("a", "b"))

    data_kind = "single"

    def __init__(self, config):
        super().__init__(config)
        self.nets["g"] = nn.Conv2d(3, 3, 1)

    def export_targets(self):
        return {"generator": ExportSpec(net="g")}


def tiny_net(*, channels: int = 3, width: int = 4):
    """A tiny network factory."""
    return nn.Conv2d(channels, width, 1)
'''

ARCH = "gantransfer.architectures"
NETS = "gantransfer.networks"


def test_builtins_are_listed_without_importing_plugins():
    code = (
        "import sys, gantransfer; names = gantransfer.list(); "
        "nets = gantransfer.list(kind='network'); "
        "assert 'dcgan' in names and 'cyclegan' in names, names; "
        "assert 'patchgan' in nets, nets; "
        "loaded = [m for m in sys.modules if m.startswith(('gantransfer_', 'onnx', 'torch'))]; "
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_list_pattern_filters_names():
    assert gantransfer.list("resnet*", kind="network") == ["resnet_6blocks", "resnet_9blocks"]
    assert gantransfer.list("nothing-like-this*") == []


def test_third_party_architecture_is_discovered_and_built(fake_site):
    fake_site(
        name="fake-tiny",
        version="1.2.3",
        entry_points={ARCH: {"tiny": "fake_tiny_mod:Tiny"}, NETS: {"tiny_net": "fake_tiny_mod:tiny_net"}},
        modules={"fake_tiny_mod": GOOD_PLUGIN},
    )
    assert "tiny" in gantransfer.list()
    model = gantransfer.get("tiny", width=8)
    assert model.config.width == 8
    assert model.arch_name == "tiny"
    assert isinstance(model.nets["g"], nn.Conv2d)
    net = gantransfer.get_network("tiny_net", width=5)
    assert net.out_channels == 5

    info = gantransfer.spec("tiny")
    assert info.distribution == "fake-tiny" and info.version == "1.2.3"
    assert info.object == "fake_tiny_mod:Tiny"
    assert info.summary == "A tiny third-party architecture for registry tests."
    fields = {f.name: f for f in info.fields}
    assert fields["width"].default == 4 and fields["width"].help == "channels of the only conv"
    assert fields["mode"].choices == ("a", "b")
    net_info = gantransfer.spec("tiny_net", kind="network")
    assert [f.name for f in net_info.fields] == ["channels", "width"]


def test_unknown_config_key_lists_valid_fields(fake_site):
    fake_site(name="fake-tiny", entry_points={ARCH: {"tiny": "fake_tiny_mod:Tiny"}},
              modules={"fake_tiny_mod": GOOD_PLUGIN})
    with pytest.raises(TypeError, match=r"'widht'.*did you mean 'width'.*Valid fields: mode, width"):
        gantransfer.get("tiny", widht=3)


def test_invalid_choice_is_rejected_with_allowed_values(fake_site):
    fake_site(name="fake-tiny", entry_points={ARCH: {"tiny": "fake_tiny_mod:Tiny"}},
              modules={"fake_tiny_mod": GOOD_PLUGIN})
    with pytest.raises(ValueError, match=r"mode = 'c' is not allowed; choose one of 'a', 'b'"):
        gantransfer.get("tiny", mode="c")


def test_unknown_network_kwarg_lists_valid_arguments(fake_site):
    fake_site(name="fake-tiny", entry_points={NETS: {"tiny_net": "fake_tiny_mod:tiny_net"}},
              modules={"fake_tiny_mod": GOOD_PLUGIN})
    with pytest.raises(TypeError, match=r"does not accept 'depth'.*Valid arguments: channels, width"):
        gantransfer.get_network("tiny_net", depth=3)


def test_unknown_name_suggests_close_names():
    with pytest.raises(UnknownPluginError) as info:
        gantransfer.get("cycelgan")
    text = str(info.value)
    assert "unknown architecture 'cycelgan'" in text
    assert "Did you mean 'cyclegan'" in text
    assert "Available:" in text and "dcgan" in text


def test_broken_plugin_raises_load_error_and_others_keep_working(fake_site):
    fake_site(
        name="fake-broken",
        version="0.9",
        entry_points={ARCH: {"broken": "fake_broken_mod:Model"}},
        modules={"fake_broken_mod": "import this_module_does_not_exist_anywhere\n"},
    )
    fake_site(name="fake-tiny", entry_points={ARCH: {"tiny": "fake_tiny_mod:Tiny"}},
              modules={"fake_tiny_mod": GOOD_PLUGIN})
    assert {"broken", "tiny"} <= set(gantransfer.list())
    with pytest.raises(PluginLoadError) as info:
        gantransfer.get("broken")
    text = str(info.value)
    assert "'broken'" in text and "fake_broken_mod:Model" in text
    assert "fake-broken 0.9" in text
    assert isinstance(info.value.__cause__, ModuleNotFoundError)
    # the other plugins are unaffected
    assert gantransfer.get("tiny").config.width == 4
    states = {(s.name, s.state) for s in gantransfer.registry.status()}
    assert ("broken", "broken") in states and ("tiny", "ok") in states


def test_entry_point_naming_a_non_model_is_a_load_error(fake_site):
    fake_site(name="fake-odd", entry_points={ARCH: {"odd": "fake_odd_mod:thing"}},
              modules={"fake_odd_mod": "thing = 42\n"})
    with pytest.raises(PluginLoadError, match="expected a GANModel subclass"):
        gantransfer.get("odd")


def test_third_party_cannot_shadow_a_builtin(fake_site, caplog):
    fake_site(
        name="fake-evil",
        entry_points={ARCH: {"dcgan": "fake_tiny_mod:Tiny"}},
        modules={"fake_tiny_mod": GOOD_PLUGIN},
    )
    with caplog.at_level("WARNING", logger="gantransfer.registry"):
        names = gantransfer.list()
    assert "dcgan" in names
    assert any("fake-evil" in r.getMessage() and "built-in" in r.getMessage() for r in caplog.records)
    assert gantransfer.spec("dcgan").distribution == "gantransfer"
    shadowed = [s for s in gantransfer.registry.status() if s.state == "shadowed"]
    assert [(s.name, s.distribution) for s in shadowed] == [("dcgan", "fake-evil")]


def test_two_third_party_plugins_with_one_name_are_a_conflict(fake_site):
    for dist in ("fake-one", "fake-two"):
        fake_site(name=dist, entry_points={ARCH: {"same": "fake_tiny_mod:Tiny"}},
                  modules={"fake_tiny_mod": GOOD_PLUGIN})
    with pytest.raises(gantransfer.PluginConflictError, match=r"fake-one.*fake-two|fake-two.*fake-one"):
        gantransfer.get("same")


def test_register_in_process_and_duplicates_are_errors():
    from gantransfer.model import ExportSpec, GANModel

    class Local(GANModel):
        @dataclass(kw_only=True)
        class Config:
            size: int = field(2, help="size")

        def export_targets(self):
            return {"g": ExportSpec(net="g")}

    gantransfer.register("local_test_arch", Local)
    try:
        assert "local_test_arch" in gantransfer.list()
        assert gantransfer.get("local_test_arch", size=3).config.size == 3
        with pytest.raises(ValueError, match="already registered"):
            gantransfer.register("local_test_arch", Local)
        with pytest.raises(ValueError, match="already registered"):
            gantransfer.register("dcgan", Local)
    finally:
        gantransfer.unregister("local_test_arch")
    assert "local_test_arch" not in gantransfer.list()


def test_register_rejects_objects_of_the_wrong_kind():
    with pytest.raises(TypeError, match="expected a GANModel subclass"):
        gantransfer.register("not_a_model", object)
    with pytest.raises(TypeError, match="callable network factory"):
        gantransfer.register("not_a_net", 3, kind="network")


def test_register_as_decorator_for_networks():
    @gantransfer.register("decorated_test_net", kind="network")
    def make(*, width: int = 2):
        return nn.Linear(width, width)

    try:
        assert gantransfer.get_network("decorated_test_net", width=3).in_features == 3
    finally:
        gantransfer.unregister("decorated_test_net", kind="network")


def test_bad_kind_is_rejected():
    with pytest.raises(ValueError, match="kind must be"):
        gantransfer.list(kind="optimizer")  # type: ignore[arg-type]


def test_build_network_passes_optional_settings_only_where_declared():
    from torch import nn

    seen = {}

    def narrow_d(in_channels: int = 3, ndf: int = 64) -> nn.Module:
        """A discriminator that knows nothing of n_layers or norm."""
        seen.update(in_channels=in_channels, ndf=ndf)
        return nn.Conv2d(in_channels, ndf, 1)

    gantransfer.register("narrow_test_d", narrow_d, kind="network")
    try:
        net = gantransfer.build_network("narrow_test_d", optional={"ndf": 8, "n_layers": 5,
                                                                   "norm": "batch"},
                                        in_channels=6)
        assert seen == {"in_channels": 6, "ndf": 8} and net.out_channels == 8
        gantransfer.build_network("narrow_test_d", optional={"ndf": 8}, overrides={"ndf": 4},
                                  in_channels=6)
        assert seen["ndf"] == 4  # the user's own kwargs win
        with pytest.raises(TypeError, match="does not accept 'n_layers'"):
            gantransfer.build_network("narrow_test_d", overrides={"n_layers": 5}, in_channels=6)
    finally:
        gantransfer.unregister("narrow_test_d", kind="network")
