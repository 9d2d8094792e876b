"""`crossmargin serve --demo` shows margin calls and a liquidation on its own; db and keys."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from crossmargin.cli import app


def test_serve_demo_liquidates_within_seconds(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "serve",
            "--demo",
            "--port",
            "0",
            "--duration",
            "12",
            "--quiet",
            "--feed",
            "demo:crash_at=3,speed=20",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "margin call" in result.output
    assert "liquidated" in result.output
    assert "Demo API keys" in result.output


def test_db_upgrade_and_keys(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    runner = CliRunner()
    assert "revision 0001" in runner.invoke(app, ["db", "upgrade", "--db", url]).output
    created = runner.invoke(app, ["keys", "create", "ops", "--role", "admin", "--db", url])
    assert created.exit_code == 0 and created.output.strip().startswith("cm_")
    bad = runner.invoke(app, ["keys", "create", "x", "--role", "king", "--db", url])
    assert bad.exit_code == 2 and "role" in bad.output
    missing = runner.invoke(app, ["serve", "--db", url, "--port", "0"])
    assert missing.exit_code == 2 and "no book in this database" in missing.output
    nodir = runner.invoke(app, ["db", "upgrade", "--db", "sqlite:////no/such/dir/x.db"])
    assert nodir.exit_code == 2 and "does not exist" in nodir.output
