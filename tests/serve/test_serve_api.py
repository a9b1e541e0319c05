"""The HTTP API of `gtx serve`, called over real HTTP (uvicorn in a thread, httpx as client).

Each translation is compared with what the Python API gives for the same image, pixel for
pixel: the server must add nothing but transport.
"""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
import torch
from _serve_helpers import (
    TOKEN,
    decode,
    export_toy_onnx,
    named,
    noise_image,
    png_bytes,
    running,
)

import gantransfer
from gantransfer.config import to_plain
from gantransfer.engine.checkpoint import save_checkpoint
from gantransfer.serve import ServeConfig


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from _export_toy import make

    root = tmp_path_factory.mktemp("serve_api")
    model = make()
    ckpt = root / "toyrun.pt"
    save_checkpoint({"architecture": "toy_export", "config": to_plain(model.config),
                     "model": model.state_dict(), "ema": None, "step": 0, "epoch": 0,
                     "versions": {}}, ckpt)
    return {"onnx": export_toy_onnx(root), "ckpt": ckpt, "root": root}


@pytest.fixture(scope="module")
def server(files):
    with running([files["onnx"], f"renamed={files['onnx']}", files["ckpt"]]) as (client, _):
        yield client


def test_models_are_listed_with_metadata_and_no_server_paths(server, files):
    body = server.get("/api/v1/models").json()
    ids = [m["id"] for m in body["models"]]
    # the checkpoint offers both image targets; NAME=PATH names a source
    assert ids == ["toy", "renamed", "toyrun-a2b", "toyrun-b2a"]
    onnx = body["models"][0]
    assert onnx["styles"] == []
    meta = onnx["metadata"]
    assert (meta["kind"], meta["architecture"], meta["target"], meta["precision"]) == (
        "onnx", "toy_export", "a2b", "fp32")
    assert (meta["in_channels"], meta["size_divisor"], meta["min_size"]) == (3, 4, 8)
    assert meta["source"] == "toy.onnx"
    torch_meta = body["models"][3]["metadata"]
    assert (torch_meta["kind"], torch_meta["target"], torch_meta["precision"]) == (
        "pytorch", "b2a", "fp32")
    assert str(files["root"]) not in server.get("/api/v1/models").text
    one = server.get("/api/v1/models/toyrun-b2a").json()
    assert one == body["models"][3]


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L"])
def test_raw_and_multipart_uploads_give_the_python_apis_pixels(server, files, mode):
    image = noise_image(41, 23, mode=mode, seed=3)
    data = png_bytes(image)
    expected = np.asarray(gantransfer.onnx.load(files["onnx"]).translate(image))
    raw = server.post("/api/v1/models/toy/translate", content=data,
                      headers={"Content-Type": "image/png"})
    assert raw.status_code == 200, raw.text
    assert raw.headers["content-type"] == "image/png"
    assert float(raw.headers["X-Model-Seconds"]) > 0
    np.testing.assert_array_equal(decode(raw.content), expected)
    multipart = server.post("/api/v1/models/renamed/translate",
                            files={"image": ("any-name.png", data, "image/png")})
    assert multipart.status_code == 200, multipart.text
    np.testing.assert_array_equal(decode(multipart.content), expected)


def test_pytorch_checkpoint_targets_match_the_loaded_model(server, files):
    image = noise_image(30, 30, seed=5)
    model = gantransfer.load(files["ckpt"])
    for target in ("a2b", "b2a"):
        r = server.post(f"/api/v1/models/toyrun-{target}/translate", content=png_bytes(image))
        assert r.status_code == 200, r.text
        with torch.no_grad():
            expected = np.asarray(model.translate(image, direction=target))
        np.testing.assert_array_equal(decode(r.content), expected)


def test_jpeg_answers_and_jpeg_uploads(server, files):
    from PIL import Image

    y, x = np.mgrid[0:48, 0:64]
    smooth = np.stack([x * 4, y * 5, (x + y) * 2], axis=-1).astype(np.uint8)  # JPEG-friendly
    jpeg = png_bytes(Image.fromarray(smooth), "JPEG")
    r = server.post("/api/v1/models/toy/translate?format=jpeg&quality=95", content=jpeg)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/jpeg"
    assert r.content[:3] == b"\xff\xd8\xff"
    upload = Image.open(io.BytesIO(jpeg))
    expected = gantransfer.onnx.load(files["onnx"]).translate(upload)
    buf = io.BytesIO()
    expected.save(buf, format="JPEG", quality=95)
    assert r.content == buf.getvalue()  # the Python API's image, encoded at quality 95


@pytest.mark.parametrize(("path", "params", "body", "status", "code"), [
    ("/api/v1/models/nope/translate", {}, b"x", 404, "unknown_model"),
    ("/api/v1/models/toy/translate", {}, b"", 400, "empty"),
    ("/api/v1/models/toy/translate", {}, b"this is text, not an image", 415,
     "unsupported_image"),
    ("/api/v1/models/toy/translate", {"format": "gif"}, b"x", 422, "invalid_request"),
    ("/api/v1/models/toy/translate", {"quality": "0"}, b"x", 422, "invalid_request"),
    ("/api/v1/models/toy/translate", {"style": "monet"}, b"x", 400, "unknown_style"),
])
def test_bad_requests_get_json_errors_with_a_message(server, path, params, body, status, code):
    r = server.post(path, params=params, content=body)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.json()["error"] == code
    assert len(r.json()["message"]) > 10
    assert "Traceback" not in r.text


def test_style_errors_name_the_styles(server):
    r = server.post("/api/v1/models/toy/translate", params={"style": "monet"}, content=b"x")
    assert r.json()["message"] == "model 'toy' has no styles; leave the style out"


def test_offered_styles_are_validated_and_listed(files):
    from gantransfer.serve._models import StyleError, open_models

    model = open_models(files["onnx"])[0]
    model.styles = ("monet", "vangogh")
    assert model.check_style(None) == "monet"
    assert model.check_style("vangogh") == "vangogh"
    with pytest.raises(StyleError, match="no style 'cezanne'; its styles: monet, vangogh"):
        model.check_style("cezanne")


def test_damaged_image_data_is_a_422(server):
    data = png_bytes(noise_image(64, 64))
    r = server.post("/api/v1/models/toy/translate", content=data[: len(data) // 2])
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "damaged_image"
    # and a multipart body without the 'image' field
    r = server.post("/api/v1/models/toy/translate", files={"photo": ("a.png", data)})
    assert (r.status_code, r.json()["error"]) == (400, "no_image_field")


def test_unknown_paths_and_methods_are_json(server):
    r = server.get("/api/v2/models")
    assert (r.status_code, r.json()["error"]) == (404, "not_found")
    r = server.delete("/api/v1/models")
    assert (r.status_code, r.json()["error"]) == (405, "method_not_allowed")
    r = server.get("/static/../app.py")
    assert r.status_code == 404


def test_health_and_schema(server):
    health = server.get("/api/v1/health").json()
    assert health["status"] == "ok"
    assert health["models"] == 4
    assert health["queue"]["capacity"] == 16
    schema = server.get("/api/v1/openapi.json").json()
    assert set(schema["paths"]) == {"/api/v1/health", "/api/v1/models",
                                    "/api/v1/models/{model_id}",
                                    "/api/v1/models/{model_id}/translate"}
    body = schema["paths"]["/api/v1/models/{model_id}/translate"]["post"]["requestBody"]
    assert {"multipart/form-data", "image/png", "application/octet-stream"} <= set(
        body["content"])


def test_the_page_and_its_files_come_from_the_server_with_a_strict_policy(server):
    page = server.get("/")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    for name in ("app.js", "app.css"):
        assert server.get(f"/static/{name}").status_code == 200
    # nothing is loaded from another origin
    assert "http" not in page.text.replace("http-equiv", "")
    assert "//" not in server.get("/static/app.js").text.replace("// ", "")


def test_a_loopback_server_refuses_foreign_host_headers(server):
    r = server.get("/api/v1/health", headers={"Host": "evil.example:8000"})
    assert (r.status_code, r.json()["error"]) == (400, "bad_host")
    assert server.get("/api/v1/health", headers={"Host": "localhost:1"}).status_code == 200


def test_token_is_checked_on_every_api_call(files):
    with running(named(files["onnx"], "toy"), token=TOKEN) as (client, _):
        good = {"Authorization": f"Bearer {TOKEN}"}
        data = png_bytes(noise_image())
        for method, path in (("GET", "/api/v1/health"), ("GET", "/api/v1/models"),
                             ("GET", "/api/v1/models/toy"),
                             ("POST", "/api/v1/models/toy/translate")):
            for headers in ({}, {"Authorization": "Bearer wrong-token-of-some-length"},
                            {"Authorization": f"Basic {TOKEN}"}):
                r = client.request(method, path, headers=headers, content=data)
                assert r.status_code == 401, (method, path, headers)
                assert r.json()["error"] == "unauthorized"
                assert r.headers["www-authenticate"] == "Bearer"
            ok = client.request(method, path, headers=good, content=data)
            assert ok.status_code == 200, (method, path, ok.text)
        assert client.get("/").status_code == 200  # the page holds no data


@pytest.mark.parametrize(("config", "message"), [
    ({"host": "0.0.0.0"}, "--expose"),
    ({"host": "192.168.1.10"}, "--expose"),
    ({"host": "0.0.0.0", "expose": True}, "needs a token"),
    ({"host": "0.0.0.0", "expose": True, "token": "short"}, "at least 16"),
    ({"queue": 0}, "--queue must be >= 1"),
])
def test_unsafe_or_impossible_configs_are_refused(config, message):
    with pytest.raises(ValueError, match=message):
        ServeConfig(**config).validate()
    ServeConfig(host="0.0.0.0", expose=True, token=TOKEN).validate()
    ServeConfig(host="::1").validate()
    ServeConfig(host="localhost").validate()


def test_cli_refuses_a_public_address_without_expose(files):
    from typer.testing import CliRunner

    from gantransfer.cli.app import app

    result = CliRunner().invoke(app, ["serve", str(files["onnx"]), "--host", "0.0.0.0"])
    assert result.exit_code == 1
    assert "--expose" in str(result.exception)
    result = CliRunner().invoke(app, ["serve", str(files["onnx"]), "--host", "0.0.0.0",
                                      "--expose"], env={"GTX_SERVE_TOKEN": ""})
    assert "needs a token" in str(result.exception)


def test_a_missing_extra_names_the_pip_command(monkeypatch):
    import importlib.util

    from gantransfer._extras import MissingExtraError, require

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("uvicorn", "av") else real(name, *a))
    with pytest.raises(MissingExtraError, match=r"uvicorn.*pip install 'gantransfer\[serve\]'"):
        require("serve")
    with pytest.raises(MissingExtraError, match=r"pip install 'gantransfer\[video\]'"):
        require("video")


def test_importing_gantransfer_imports_no_server_or_video_library():
    code = ("import sys, gantransfer, gantransfer.serve, gantransfer.video; "
            "print(sorted(m for m in ('fastapi', 'uvicorn', 'starlette', 'multipart', 'av') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_latent_generator_is_refused_at_start():
    from gantransfer.serve._server import open_served

    dcgan = gantransfer.get("dcgan", image_size=32)
    with pytest.raises(ValueError, match="no image-input target"):
        open_served([dcgan])
    with pytest.raises(FileNotFoundError, match="does not exist: give a run directory"):
        open_served(["no/such/model.onnx"])


def test_a_multi_style_model_offers_its_styles_and_each_gives_the_python_apis_pixels(tmp_path):
    """A StarGAN checkpoint and its ONNX export: the styles are listed (from the label names),
    each style's answer equals ``model.translate(image, style=...)``, styles differ, and an
    unknown style names the valid ones."""
    torch.manual_seed(0)
    model = gantransfer.get("stargan", labels=["monet", "photo", "ukiyoe"], ngf=4, ndf=4,
                            n_layers_D=2, load_size=16, crop_size=16).eval()
    with torch.no_grad():  # untrained, every style's scale and shift are equal: make them differ
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    ckpt = tmp_path / "stars.pt"
    save_checkpoint({"architecture": "stargan", "config": to_plain(model.config),
                     "model": model.state_dict(), "ema": None, "step": 0, "epoch": 0,
                     "versions": {}}, ckpt)
    onnx = gantransfer.export_onnx(model, tmp_path / "stars.onnx", atol=1e-3)[0].path
    image = noise_image(24, 16, seed=3)
    with running([ckpt, onnx]) as (client, _):
        listed = {m["id"]: m for m in client.get("/api/v1/models").json()["models"]}
        assert len(listed) == 2, listed
        answers = {}
        for model_id, info in listed.items():
            assert info["styles"] == ["monet", "photo", "ukiyoe"], info
            for style in info["styles"]:
                r = client.post(f"/api/v1/models/{model_id}/translate",
                                params={"style": style}, content=png_bytes(image))
                assert r.status_code == 200, r.text
                answers[model_id, style] = decode(r.content)
            bad = client.post(f"/api/v1/models/{model_id}/translate",
                              params={"style": "cezanne"}, content=png_bytes(image))
            assert bad.status_code == 400
            assert "monet, photo, ukiyoe" in bad.json()["message"]
    for style in ("monet", "photo", "ukiyoe"):
        expected = np.asarray(model.translate(image, style=style))
        torch_id = next(i for i in listed if listed[i]["metadata"]["kind"] == "pytorch")
        onnx_id = next(i for i in listed if listed[i]["metadata"]["kind"] == "onnx")
        np.testing.assert_array_equal(answers[torch_id, style], expected)
        assert np.abs(answers[onnx_id, style].astype(int) - expected.astype(int)).max() <= 1
    assert not np.array_equal(answers[torch_id, "monet"], answers[torch_id, "ukiyoe"])
