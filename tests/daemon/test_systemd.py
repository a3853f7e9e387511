"""The systemd units and the deployment guide agree with each other and with the code."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import Cli

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "systemd"
GUIDE = ROOT / "docs" / "deploying.md"


def unit(name: str) -> dict[str, dict[str, list[str]]]:
    """Sections → key → values (systemd allows a key several times)."""
    out: dict[str, dict[str, list[str]]] = {}
    section = ""
    for raw in (UNITS / name).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            out.setdefault(section, {})
            continue
        key, _, value = line.partition("=")
        out[section].setdefault(key, []).append(value)
    return out


SERVICES = ("syncd.service", "syncd-once.service")
ALL = (*SERVICES, "syncd-once.timer")


def test_the_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    exe = Path(sys.executable).with_name("syncd")
    exe = exe if exe.exists() else Path(shutil.which("true") or "/bin/true")
    for name in ALL:
        (tmp_path / name).write_text((UNITS / name).read_text().replace("/usr/bin/syncd", str(exe)))
    res = subprocess.run(
        [analyze, "verify", *(str(tmp_path / n) for n in ALL)], capture_output=True, text=True, timeout=120
    )
    ours = [line for line in (res.stdout + res.stderr).splitlines() if str(tmp_path) in line]
    assert res.returncode == 0 and ours == [], res.stdout + res.stderr


def test_the_daemon_is_not_restarted_for_a_config_or_store_error() -> None:
    u = unit("syncd.service")
    assert u["Service"]["Restart"] == ["on-failure"]
    prevented = " ".join(u["Service"].get("RestartPreventExitStatus", [])).split()
    assert "2" in prevented
    assert u["Unit"].get("StartLimitBurst") and u["Unit"].get("StartLimitIntervalSec")


def test_a_bad_config_exits_2_the_status_the_unit_does_not_restart_on(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('[server]\nlisten = "nowhere"\n')
    assert Cli(cfg)("run").exit_code == 2


def test_the_once_service_is_never_restarted_and_fails_on_every_nonzero_exit() -> None:
    u = unit("syncd-once.service")
    assert "Restart" not in u["Service"] and "SuccessExitStatus" not in u["Service"]
    assert u["Service"]["Type"] == ["oneshot"]


def test_both_services_run_as_one_system_user_on_one_state_directory() -> None:
    users = {tuple(unit(n)["Service"].get("User", [])) for n in SERVICES}
    states = {tuple(unit(n)["Service"].get("StateDirectory", [])) for n in SERVICES}
    assert users == {("syncd",)} and states == {("syncd",)}
    assert all("DynamicUser" not in unit(n)["Service"] for n in SERVICES)


def test_documentation_points_to_a_file_the_guide_installs() -> None:
    guide = GUIDE.read_text()
    for name in ALL:
        for doc in unit(name)["Unit"]["Documentation"]:
            assert doc.startswith("file://"), doc
            installed = doc.removeprefix("file://")
            m = re.search(rf"install [^\n]*?(\S+) {re.escape(installed)}", guide)
            assert m, f"{name}: the guide never installs {installed}"
            assert (ROOT / m.group(1)).is_file(), m.group(1)


def test_the_guide_installs_config_and_secrets_readable_by_the_service_group_only() -> None:
    guide = GUIDE.read_text()
    assert re.search(r"install -m 0640 -o root -g syncd config\.toml /etc/syncd/config\.toml", guide)
    assert not re.search(r"install -m 06[0-7][4-7] [^\n]*config\.toml", guide)
    assert re.search(r"install -d -m 0750 -o root -g syncd /etc/syncd /etc/syncd/credentials", guide)
    assert 'state_dir = "/var/lib/syncd"' in guide  # admin shells and units share the store


def test_admin_commands_run_as_the_units_user_with_its_credentials() -> None:
    guide = GUIDE.read_text()
    (alias,) = re.findall(r"alias syncd-admin='([^']+)'", guide)
    assert (
        alias.startswith("runuser -u syncd -- ") and "CREDENTIALS_DIRECTORY=/etc/syncd/credentials" in alias
    )
    recipes = [line for line in guide.splitlines() if "systemd-run" in line]
    assert all("Do not" in line or "Not " in line for line in recipes), recipes
    readme = (UNITS / "README.md").read_text()
    assert alias in readme


def test_every_service_can_load_the_store_url_credential() -> None:
    for name in SERVICES:
        text = (UNITS / name).read_text()
        assert re.search(r"(?m)^#?LoadCredential=store-url:/etc/syncd/credentials/store-url$", text), name
