"""Pretrained models by name (issue 16): `gtx weights download NAME` against a local server, then
the name wherever a run directory works; nothing is fetched implicitly; the catalogue is
extensible through the `gantransfer.pretrained` entry-point group."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from _local_http import FileServer, local_server
from PIL import Image
from typer.testing import CliRunner

import gantransfer
from gantransfer import pretrained
from gantransfer._pin import ChangedFileError
from gantransfer.cli.app import app
from gantransfer.pixels import from_uint8, to_uint8

NAME = "cyclegan/style_monet"


def _official_generator(seed: int) -> tuple[torch.nn.Module, bytes]:
    """A small random resnet generator and its state dict saved as the official code does."""
    torch.manual_seed(seed)
    net = gantransfer.get_network("resnet_6blocks", ngf=4, norm="instance").eval()
    with torch.no_grad():  # instance norm affine=False: make the convs' biases non-trivial too
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    return net, buf.getvalue()


class _Server(FileServer):
    pass


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    _Server.reset()
    with local_server(_Server) as url:
        yield url


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate([(32, 32), (24, 40)]):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def _run(*args: str):
    return CliRunner().invoke(app, list(args))


def test_name_not_downloaded_gives_the_command_and_fetches_nothing(
        server: str, photos: Path, tmp_path: Path) -> None:
    _Server.files["/style_monet.pth"] = _official_generator(0)[1]
    result = _run("translate", NAME, str(photos), "-o", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert isinstance(result.exception, pretrained.NotDownloadedError)
    assert f"gtx weights download {NAME}" in str(result.exception)
    assert _Server.requests == []  # nothing fetched implicitly
    assert not (tmp_path / "out").exists()
    with pytest.raises(pretrained.NotDownloadedError):
        gantransfer.load(NAME)


def test_downloaded_name_translates_exactly_like_the_generator_loaded_directly(
        server: str, photos: Path, tmp_path: Path) -> None:
    net, body = _official_generator(1)
    _Server.files["/style_monet.pth"] = body
    result = _run("weights", "download", NAME, "--mirror", server)
    assert result.exit_code == 0, result.output
    assert "UNVERIFIED" in result.output and "converted into" in result.output
    record = pretrained.cached(NAME)
    assert record is not None and record.source.size == len(body)
    assert record.source.url == f"{server}/style_monet.pth" and not record.source.verified
    assert not (record.checkpoint.parent / "style_monet.pth").exists()  # converted, then deleted

    out = tmp_path / "out"
    result = _run("translate", NAME, str(photos), "-o", str(out), "--device", "cpu",
                  "--precision", "fp32", "--compile", "off")
    assert result.exit_code == 0, result.output
    for src in sorted(photos.iterdir()):
        x = from_uint8(torch.from_numpy(np.array(Image.open(src))).permute(2, 0, 1)[None])
        with torch.no_grad():
            expected = to_uint8(net(x))[0].permute(1, 2, 0).numpy()
        got = np.asarray(Image.open(out / src.name))
        assert got.shape == expected.shape
        np.testing.assert_array_equal(got, expected)

    model = gantransfer.load(NAME)  # the Python API takes the name too
    for key, value in net.state_dict().items():
        assert torch.equal(model.nets["g_ab"].state_dict()[key], value), key

    # gtx serve opens the name like any run directory, and serves the same pixels.
    from gantransfer.serve._server import open_served

    served = {m.id: m for m in open_served([NAME], device="cpu", precision="fp32")}
    a2b = next(m for model_id, m in served.items() if model_id.endswith("a2b"))
    first = sorted(photos.iterdir())[0]
    from gantransfer.inference.images import crop_to, output_pixels, padded_input

    t = a2b.translator
    x, size = padded_input(np.asarray(Image.open(first).convert("RGB")), divisor=t.divisor,
                           min_size=t.min_size)
    with torch.no_grad():
        served_pixels = output_pixels(crop_to(t(x), size, (x.shape[-2], x.shape[-1])))
    np.testing.assert_array_equal(served_pixels, np.asarray(Image.open(out / first.name)))


    listed = _run("weights", "list")
    assert listed.exit_code == 0
    row = next(line for line in listed.output.splitlines() if NAME in line)
    assert "yes" in row


def test_second_download_keeps_the_cache_and_a_changed_upstream_file_is_refused(
        server: str) -> None:
    _Server.files["/style_monet.pth"] = _official_generator(2)[1]
    assert _run("weights", "download", NAME, "--mirror", server).exit_code == 0
    before = pretrained.cached(NAME)
    again = _run("weights", "download", NAME, "--mirror", server)
    assert again.exit_code == 0 and "nothing downloaded" in again.output
    _Server.files["/style_monet.pth"] = _official_generator(3)[1]
    forced = _run("weights", "download", NAME, "--mirror", server, "--force")
    assert forced.exit_code == 1 and isinstance(forced.exception, ChangedFileError)
    assert pretrained.cached(NAME) == before  # the converted model is untouched


def test_a_tampered_cached_checkpoint_is_refused(server: str) -> None:
    _Server.files["/style_monet.pth"] = _official_generator(4)[1]
    assert _run("weights", "download", NAME, "--mirror", server).exit_code == 0
    checkpoint = pretrained.cached(NAME).checkpoint
    data = bytearray(checkpoint.read_bytes())
    data[-10] ^= 0xFF
    checkpoint.write_bytes(bytes(data))
    with pytest.raises(ChangedFileError, match="--force"):
        gantransfer.load(NAME)


def test_unknown_name_of_a_known_collection_suggests_close_names(server: str) -> None:
    with pytest.raises(LookupError, match="cyclegan/style_monet"):
        pretrained.resolve_source("cyclegan/style_monett")


def test_official_catalogue_has_the_upstream_urls() -> None:
    entries = pretrained.catalogue()
    assert entries[NAME].url == ("https://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/"
                                 "style_monet.pth")
    assert entries["pix2pix/edges2shoes"].url == ("https://efrosgans.eecs.berkeley.edu/pix2pix/"
                                                  "models-pytorch/edges2shoes.pth")
    for name in ("style_cezanne", "style_ukiyoe", "style_vangogh", "horse2zebra", "zebra2horse",
                 "summer2winter_yosemite", "winter2summer_yosemite", "apple2orange",
                 "orange2apple", "monet2photo", "sat2map", "map2sat", "facades_label2photo"):
        assert f"cyclegan/{name}" in entries
    assert all(e.sha256 is None and e.distribution == "gantransfer" for e in entries.values())


THIRD_PARTY = '''
from pathlib import Path
from gantransfer.pretrained import PretrainedModel

def convert(downloaded: Path, checkpoint: Path) -> None:
    checkpoint.write_bytes(b"converted:" + downloaded.read_bytes())

def catalogue():
    return [PretrainedModel(name="toyarch/tiny", url="http://invalid.example/tiny.bin",
                            convert=convert, description="a third-party toy"),
            PretrainedModel(name="cyclegan/style_monet", url="http://invalid.example/evil.pth",
                            convert=convert, description="tries to shadow a built-in name")]
'''


def test_a_plugin_publishes_its_own_names_through_the_entry_point(
        server: str, fake_site, caplog: pytest.LogCaptureFixture) -> None:
    fake_site(name="fake-pretrained", entry_points={
        "gantransfer.pretrained": {"toy": "fakepretrained_mod:catalogue"}},
        modules={"fakepretrained_mod": THIRD_PARTY})
    entries = pretrained.catalogue()
    assert entries["toyarch/tiny"].distribution == "fake-pretrained"
    assert entries[NAME].distribution == "gantransfer"  # not shadowed
    assert "ignored" in caplog.text
    _Server.files["/tiny.bin"] = b"toy weights"
    result = _run("weights", "download", "toyarch/tiny", "--url", f"{server}/tiny.bin")
    assert result.exit_code == 0, result.output
    record = pretrained.cached("toyarch/tiny")
    assert record is not None and record.checkpoint.read_bytes() == b"converted:toy weights"
    assert pretrained.resolve_source("toyarch/tiny") == record.checkpoint


def test_an_entry_registered_in_process_is_in_the_catalogue(server: str) -> None:
    entry = pretrained.PretrainedModel(name="mine/one", url="http://invalid.example/one.bin",
                                       convert=lambda src, dst: dst.write_bytes(b"x"))
    pretrained.register_pretrained(entry)
    try:
        assert pretrained.catalogue()["mine/one"] is entry
        with pytest.raises(ValueError, match="already"):
            pretrained.register_pretrained(entry)
        with pytest.raises(pretrained.NotDownloadedError, match="gtx weights download mine/one"):
            pretrained.resolve_source("mine/one")
    finally:
        pretrained.unregister_pretrained("mine/one")
