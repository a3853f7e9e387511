"""`syncd demo`: the next steps it prints work as printed, from the directory it ran in."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

from tests.cli.conftest import ROOT

SIZE = ("--users", "20", "--groups", "4")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200", "PATH": "/usr/bin:/bin"}


def _script(tmp_path: Path) -> Path:
    """An entry-point script like the one pip writes to .venv/bin/syncd (not on PATH)."""
    script = tmp_path / "venv" / "bin" / "syncd"
    script.parent.mkdir(parents=True)
    script.write_text(f"#!{sys.executable}\nimport sys\nfrom cli.main import main\nsys.exit(main())\n")
    script.chmod(0o755)
    return script


def _commands(out: str) -> list[list[str]]:
    return [shlex.split(line) for line in out.splitlines() if line.startswith("  venv/bin/syncd ")]


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=300)


def test_the_demo_prints_store_commands_that_work_and_says_how_to_keep_the_idps_up(tmp_path: Path) -> None:
    _script(tmp_path)
    done = _run(["venv/bin/syncd", "demo", *SIZE], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "venv/bin/syncd demo --keep-running" in done.stdout
    stored = [c for c in _commands(done.stdout) if c[3] in ("teams", "runs", "audit")]
    assert len(stored) == 3
    for command in stored:
        result = _run(command, tmp_path)
        assert result.returncode == 0, (command, result.stderr)


def test_with_keep_running_the_printed_idp_commands_work_until_ctrl_c(tmp_path: Path) -> None:
    _script(tmp_path)
    proc = subprocess.Popen(
        ["venv/bin/syncd", "demo", "--keep-running", *SIZE],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        for line in proc.stdout:
            lines.append(line)
            if "until Ctrl-C" in line:
                break
        lines += [proc.stdout.readline() for _ in range(6)]
        live = [c for c in _commands("".join(lines)) if c[3] in ("plan", "run", "login-sync")]
        assert [c[3] for c in live] == ["plan", "run", "login-sync"], lines
        for command in live:
            result = _run(command, tmp_path)
            assert result.returncode == 0, (command, result.stdout, result.stderr)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
