"""Plugins contribute `gtx` commands through the `gantransfer.commands` entry-point group."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import typer
from typer.testing import CliRunner

HELLO_PLUGIN = '''
import typer


def register(app: typer.Typer) -> None:
    @app.command("hello")
    def hello(name: str = typer.Option("world", "--name")) -> None:
        """Say hello."""
        from gantransfer.cli import console

        console.print(f"hello {name}")

    @app.command("train")
    def train() -> None:
        """Would shadow the core's train."""
        raise SystemExit("the plugin's train ran")


def broken(app: typer.Typer) -> None:
    raise RuntimeError("this plugin is broken")
'''


def _core_app() -> typer.Typer:
    app = typer.Typer()

    @app.command("train")
    def train() -> None:
        typer.echo("core train")

    return app


def _install(fake_site) -> Path:
    """The fake distribution 'gtx-hello' with a broken and a working command entry point; returns
    the folder it is installed in."""
    dist = fake_site(name="gtx-hello", modules={"fake_hello_cmds": HELLO_PLUGIN},
                     entry_points={"gantransfer.commands": {
                         "broken": "fake_hello_cmds:broken", "hello": "fake_hello_cmds:register"}})
    return dist.parent


def test_plugin_commands_are_added_and_cannot_shadow_core_or_break_the_cli(fake_site, caplog):
    _install(fake_site)
    app = _core_app()
    with caplog.at_level("WARNING", logger="gantransfer.cli"):
        importlib.import_module("gantransfer.cli.app")._add_plugin_commands(app)
    runner = CliRunner()
    result = runner.invoke(app, ["hello", "--name", "gtx"])
    assert result.exit_code == 0 and result.output.strip() == "hello gtx"
    result = runner.invoke(app, ["train"])
    assert result.exit_code == 0 and result.output.strip() == "core train"
    text = caplog.text
    assert "'broken'" in text and "RuntimeError: this plugin is broken" in text
    assert "command 'train' from plugin 'fake_hello_cmds:register' is left out" in text


def test_import_cyclegan_comes_from_the_cyclegan_plugin_entry_point():
    from gantransfer.cli.app import app
    from gantransfer.registry import command_entry_points

    values = {ep.name: ep.value for ep in command_entry_points()}
    assert values["import-cyclegan"] == "gantransfer_cyclegan.cli:register"
    names = [c.name for c in app.registered_commands]
    assert names.count("import-cyclegan") == 1
    core = Path(__file__).resolve().parents[2] / "gantransfer"
    assert not [p for p in core.rglob("*.py") if "gantransfer_cyclegan" in p.read_text()]


def test_an_installed_plugin_command_runs_from_gtx(fake_site):
    """A real (fake) distribution on the path: its command is part of `gtx`."""
    site = _install(fake_site)
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, PYTHONPATH=path)
    out = subprocess.run([sys.executable, "-m", "gantransfer", "hello", "--name", "plugin"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "hello plugin"
    # The broken entry point and the core's train are left out, said on stderr.
    assert "RuntimeError: this plugin is broken" in out.stderr
    assert "command 'train' from plugin 'fake_hello_cmds:register' is left out" in out.stderr


def test_gtx_without_plugin_commands_still_has_the_core(monkeypatch):
    monkeypatch.setattr("gantransfer.registry.command_entry_points", lambda: [])
    app = _core_app()
    importlib.import_module("gantransfer.cli.app")._add_plugin_commands(app)
    assert [c.name for c in app.registered_commands] == ["train"]
