"""Config validation: defaults, every key's checks (with key path and line), secret sources."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from syncd.config import (
    Auth0Directory,
    ConfigError,
    ConfigNotFound,
    GoogleDirectory,
    GraphDirectory,
    OktaDirectory,
    ScimDirectory,
    Secret,
    Settings,
    load_config,
    parse_config,
    parse_duration,
)
from syncd.config.models import KINDS

ROOT = Path(__file__).resolve().parent.parent
GRAPH = '[directories.entra]\nkind = "graph"\ntenant_id = "t"\nclient_id = "c"\n'


def parse(text: str, tmp_path: Path, env: dict[str, str] | None = None) -> Settings:
    src = tmp_path / "config.toml"
    src.write_text(text)
    return parse_config(text, source=src, environ={"HOME": str(tmp_path / "home"), **(env or {})})


def problems(
    text: str, tmp_path: Path, env: dict[str, str] | None = None
) -> list[tuple[str, int | None, str]]:
    with pytest.raises(ConfigError) as info:
        parse(text, tmp_path, env)
    return [(p.key, p.line, p.message) for p in info.value.problems]


# ------------------------------------------------------------------ defaults


def test_empty_file_gives_defaults_under_the_xdg_state_dir(tmp_path: Path) -> None:
    s = parse("", tmp_path)
    assert s.state_dir == tmp_path / "home" / ".local" / "state" / "syncd"
    assert s.store.url == f"sqlite:///{s.state_dir / 'syncd.db'}"
    assert s.server.listen == "127.0.0.1:8080"
    assert s.server.public_url == "http://127.0.0.1:8080"
    assert s.server.max_body_bytes == 10 * 1024 * 1024
    assert (s.log.level, s.log.format) == ("info", "text")
    assert s.directories == {}


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"STATE_DIRECTORY": "/var/lib/syncd:/var/lib/other"}, "/var/lib/syncd"),
        ({"XDG_STATE_HOME": "/xdg"}, "/xdg/syncd"),
    ],
)
def test_state_dir_comes_from_systemd_then_xdg(tmp_path: Path, env: dict[str, str], expected: str) -> None:
    assert parse("", tmp_path, env).state_dir == Path(expected)


def test_relative_state_dir_is_relative_to_the_config_file_and_sets_the_store(tmp_path: Path) -> None:
    s = parse('state_dir = "st"\n', tmp_path)
    assert s.state_dir == tmp_path / "st"
    assert s.store.url == f"sqlite:///{tmp_path / 'st' / 'syncd.db'}"


def test_public_url_defaults_to_the_listen_address(tmp_path: Path) -> None:
    assert parse('[server]\nlisten = "0.0.0.0:9000"\n', tmp_path).server.public_url == "http://0.0.0.0:9000"


def test_pull_directory_defaults(tmp_path: Path) -> None:
    d = parse(GRAPH + 'client_secret = "x"\n', tmp_path).directories["entra"]
    assert isinstance(d, GraphDirectory)
    assert (d.schedule.interval, d.schedule.cron, d.jitter, d.concurrency) == (3600, None, 120, 4)
    assert d.base_url == "https://graph.microsoft.com/v1.0"


def test_settings_are_frozen(tmp_path: Path) -> None:
    s = parse("", tmp_path)
    with pytest.raises(ValueError, match="frozen"):
        s.server.listen = "0.0.0.0:1"  # type: ignore[misc]


# ------------------------------------------------------------------ finding the file


def test_no_file_anywhere_gives_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("syncd.config.SEARCH_PATH", (Path("config.toml"), tmp_path / "etc.toml"))
    s = load_config(None, environ={"HOME": str(tmp_path)})
    assert s.source is None
    assert s.state_dir == tmp_path / ".local" / "state" / "syncd"


def test_search_order_is_option_then_env_then_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("opt", "env", "cwd"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.toml").write_text(
            f'[log]\nlevel = "{"debug" if name == "opt" else "error"}"\n'
        )
    monkeypatch.chdir(tmp_path / "cwd")
    env = {"SYNCD_CONFIG": str(tmp_path / "env" / "config.toml")}
    assert (
        load_config(tmp_path / "opt" / "config.toml", environ=env).source == tmp_path / "opt" / "config.toml"
    )
    assert load_config(None, environ=env).source == tmp_path / "env" / "config.toml"
    assert load_config(None, environ={}).source == Path("config.toml")


@pytest.mark.parametrize("how", ["option", "env"])
def test_a_named_file_that_does_not_exist_is_an_error(tmp_path: Path, how: str) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigNotFound, match="config file not found"):
        if how == "option":
            load_config(missing, environ={})
        else:
            load_config(None, environ={"SYNCD_CONFIG": str(missing)})


# ------------------------------------------------------------------ problems, with key and line

BAD = [
    # (name, toml, key, line, message pattern)
    ("unknown top-level key", 'stat_dir = "x"\n', "stat_dir", 1, "unknown key"),
    (
        "unknown key in table",
        '[server]\nlisten = "127.0.0.1:1"\nmax_body = 1\n',
        "server.max_body",
        3,
        "unknown key",
    ),
    ("unknown table", "\n[logging]\nlevel = 1\n", "logging", 2, "unknown key"),
    ("int for string", "[server]\nlisten = 8080\n", "server.listen", 2, "expected a string, got integer"),
    (
        "string for int",
        '[server]\nmax_body_bytes = "1MB"\n',
        "server.max_body_bytes",
        2,
        "expected an integer",
    ),
    ("bool for int", "[server]\nmax_body_bytes = true\n", "server.max_body_bytes", 2, "expected an integer"),
    ("zero body size", "[server]\nmax_body_bytes = 0\n", "server.max_body_bytes", 2, "greater than 0"),
    ("string for table", 'server = "x"\n', "server", 1, "expected a table, got string"),
    ("bad listen", '[server]\nlisten = "localhost"\n', "server.listen", 2, "HOST:PORT"),
    ("bad port", '[server]\nlisten = "localhost:99999"\n', "server.listen", 2, "HOST:PORT"),
    ("bad public url", '[server]\npublic_url = "syncd.example.com"\n', "server.public_url", 2, "http"),
    ("bad store url", '[store]\nurl = "mysql://db/x"\n', "store.url", 2, "sqlite:///PATH or postgresql"),
    ("bad log level", '[log]\nlevel = "loud"\n', "log.level", 2, "got 'loud'"),
    ("bad log format", '[log]\nformat = "xml"\n', "log.format", 2, "'text' or 'json'"),
    (
        "bad directory name",
        '[directories.Entra_X]\nkind = "scim"\n',
        "directories.Entra_X",
        1,
        "bad directory name",
    ),
    (
        "dotted directory name quoted",
        '[directories."-x.y"]\nkind = "scim"\n',
        'directories."-x.y"',
        1,
        "bad dir",
    ),
    (
        "too long directory name",
        f'[directories.{"a" * 65}]\nkind = "scim"\n',
        f"directories.{'a' * 65}",
        1,
        "bad",
    ),
    ("missing kind", "[directories.a]\n", "directories.a", 1, "missing required key kind"),
    ("unknown kind", '[directories.a]\n\nkind = "ldap"\n', "directories.a.kind", 3, "kind must be one of"),
    (
        "scim takes no schedule",
        '[directories.a]\nkind = "scim"\nschedule = "1h"\n',
        "directories.a.schedule",
        3,
        "unknown key",
    ),
    (
        "graph missing tenant",
        '[directories.a]\nkind = "graph"\nclient_id = "c"\nclient_secret = "s"\n',
        "directories.a.tenant_id",
        1,
        "missing required key",
    ),
    (
        "graph typo",
        GRAPH + 'client_secret = "s"\ntennant_id = "t"\n',
        "directories.entra.tennant_id",
        6,
        "unknown key",
    ),
    ("graph no credential", GRAPH, "directories.entra", 1, "exactly one of client_secret"),
    (
        "graph two credentials",
        GRAPH + 'client_secret = "s"\nclient_secret_env = "HOME"\n',
        "directories.entra",
        1,
        "exactly one of",
    ),
    (
        "empty secret",
        GRAPH + 'client_secret = ""\n',
        "directories.entra.client_secret",
        5,
        "must not be empty",
    ),
    (
        "bad schedule",
        GRAPH + 'client_secret = "s"\nschedule = "hourly"\n',
        "directories.entra.schedule",
        6,
        "interval like",
    ),
    (
        "bad cron",
        GRAPH + 'client_secret = "s"\nschedule = "61 * * * *"\n',
        "directories.entra.schedule",
        6,
        "bad cron",
    ),
    (
        "zero interval",
        GRAPH + 'client_secret = "s"\nschedule = "0m"\n',
        "directories.entra.schedule",
        6,
        "longer than 0s",
    ),
    (
        "bad jitter",
        GRAPH + 'client_secret = "s"\njitter = "soon"\n',
        "directories.entra.jitter",
        6,
        "duration",
    ),
    (
        "concurrency too high",
        GRAPH + 'client_secret = "s"\nconcurrency = 65\n',
        "directories.entra.concurrency",
        6,
        "less than or equal to 64",
    ),
    (
        "okta no credential",
        '[directories.o]\nkind = "okta"\norg_url = "https://x.okta.com"\n',
        "directories.o",
        1,
        "either a token",
    ),
    (
        "okta half oauth",
        '[directories.o]\nkind = "okta"\norg_url = "https://x.okta.com"\nclient_id = "c"\n',
        "directories.o",
        1,
        "both client_id and private_key_file",
    ),
    (
        "auth0 no secret",
        '[directories.a0]\nkind = "auth0"\ndomain = "x.eu.auth0.com"\nclient_id = "c"\n',
        "directories.a0",
        1,
        "give exactly one of client_secret",
    ),
    (
        "auth0 domain is a URL",
        '[directories.a0]\nkind = "auth0"\ndomain = "https://x.eu.auth0.com/"\nclient_id = "c"\n'
        'client_secret = "s"\n',
        "directories.a0",
        1,
        "tenant's host name",
    ),
    (
        "auth0 unknown teams",
        '[directories.a0]\nkind = "auth0"\ndomain = "x.eu.auth0.com"\nclient_id = "c"\n'
        'client_secret = "s"\nteams = "groups"\n',
        "directories.a0.teams",
        6,
        "roles",
    ),
    (
        "google missing subject",
        '[directories.g]\nkind = "google"\nservice_account_file = "sa.json"\n',
        "directories.g.subject",
        1,
        "missing required key",
    ),
    (
        "dotted keys",
        'directories.a.kind = "scim"\ndirectories.a.extra = 1\n',
        "directories.a.extra",
        2,
        "unknown",
    ),
    ("inline table", '[directories]\na = { kind = "scim", x = 1 }\n', "directories.a.x", 2, "unknown key"),
]


@pytest.mark.parametrize(("toml", "key", "line", "pattern"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_config_names_the_key_and_its_line(
    tmp_path: Path, toml: str, key: str, line: int, pattern: str
) -> None:
    (tmp_path / "sa.json").write_text("{}")
    found = problems(toml, tmp_path, {"HOME": str(tmp_path)})
    assert len(found) == 1, found
    assert found[0][:2] == (key, line)
    assert re.search(pattern, found[0][2]), found[0][2]


def test_every_problem_is_reported_in_line_order(tmp_path: Path) -> None:
    text = '[log]\nlevel = "loud"\n[server]\nlisten = 1\n[directories.a]\nkind = "x"\n[store]\nurl = 3\n'
    assert [line for _, line, _ in problems(text, tmp_path)] == [2, 4, 6, 8]


def test_problem_string_has_file_line_and_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse("[server]\nlisten = 1\n", tmp_path)
    assert (
        str(info.value.problems[0])
        == f"{tmp_path / 'config.toml'}:2: server.listen: expected a string, got integer"
    )


def test_a_key_in_a_comment_or_string_is_not_taken_for_the_key(tmp_path: Path) -> None:
    text = '# bogus = 1\n[log]\nformat = "text"\n# bogus = 2\nbogus = """\nbogus = 3\n"""\n'
    assert problems(text, tmp_path) == [("log.bogus", 5, "unknown key")]


@pytest.mark.parametrize(
    ("toml", "line", "column"),
    [("a = 1\nb = \n", 2, 5), ("[server\n", 1, 8), ('x = "unterminated\n', 1, 18), ("a = 1\na = 2\n", 2, 6)],
)
def test_toml_syntax_errors_give_line_and_column(tmp_path: Path, toml: str, line: int, column: int) -> None:
    with pytest.raises(ConfigError) as info:
        parse(toml, tmp_path)
    (p,) = info.value.problems
    assert (p.line, p.column) == (line, column)
    assert p.message.startswith("TOML syntax: ")


# ------------------------------------------------------------------ secrets


def test_secret_given_as_a_value(tmp_path: Path) -> None:
    d = parse(GRAPH + 'client_secret = "s3cr3t"\n', tmp_path).directories["entra"]
    assert isinstance(d, GraphDirectory) and d.secret is not None
    assert (d.secret.reveal(), d.secret.source) == ("s3cr3t", "value")


def test_secret_from_env(tmp_path: Path) -> None:
    d = parse(GRAPH + 'client_secret_env = "ENTRA_SECRET"\n', tmp_path, {"ENTRA_SECRET": "from-env"})
    secret = d.directories["entra"].secret  # type: ignore[union-attr]
    assert (secret.reveal(), secret.source) == ("from-env", "env ENTRA_SECRET")


def test_secret_from_file_is_stripped_and_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "entra.secret").write_text("from-file\n")
    d = parse(GRAPH + 'client_secret_file = "entra.secret"\n', tmp_path).directories["entra"]
    assert d.secret.reveal() == "from-file"  # type: ignore[union-attr]


def test_secret_file_is_found_in_the_systemd_credentials_directory(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "entra.secret").write_text("from-credentials")
    (tmp_path / "entra.secret").write_text("beside-the-config")
    s = parse(
        GRAPH + 'client_secret_file = "entra.secret"\n', tmp_path, {"CREDENTIALS_DIRECTORY": str(creds)}
    )
    assert s.directories["entra"].secret.reveal() == "from-credentials"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("line", "env", "pattern"),
    [
        ('client_secret_env = "MISSING"', {}, "environment variable MISSING is not set"),
        ('client_secret_env = "EMPTY"', {"EMPTY": " "}, "environment variable EMPTY is empty"),
        ('client_secret_env = "not a name"', {}, "not an environment variable name"),
        ('client_secret_file = "nope.secret"', {}, "nope.secret does not exist"),
        ('client_secret_file = "empty.secret"', {}, "empty.secret is empty"),
        ('certificate_path = "nope.pem"', {}, "nope.pem does not exist"),
    ],
)
def test_unusable_secret_sources_are_errors(
    tmp_path: Path, line: str, env: dict[str, str], pattern: str
) -> None:
    (tmp_path / "empty.secret").write_text("\n")
    ((key, lineno, message),) = problems(GRAPH + line + "\n", tmp_path, env)
    assert (key, lineno) == (f"directories.entra.{line.split(' ')[0]}", 5)
    assert re.search(pattern, message), message


def test_secrets_never_show_in_repr_str_or_dump(tmp_path: Path) -> None:
    s = parse(GRAPH + 'client_secret = "hunter2-secret"\n', tmp_path)
    d = s.directories["entra"]
    for shown in (repr(s), str(s), repr(d.secret), str(d.secret), s.model_dump_json(), str(s.model_dump())):  # type: ignore[union-attr]
        assert "hunter2-secret" not in shown
    assert "hunter2" not in repr(Secret("hunter2"))


def test_store_url_password_is_hidden_in_display_url(tmp_path: Path) -> None:
    s = parse('[store]\nurl = "postgresql+psycopg://syncd:pw123@db/syncd"\n', tmp_path)
    assert "pw123" not in s.store.display_url
    assert s.store.url.endswith("pw123@db/syncd")


# ------------------------------------------------------------------ directory kinds


def test_each_kind_validates_into_its_model(tmp_path: Path) -> None:
    (tmp_path / "sa.json").write_text("{}")
    (tmp_path / "okta.pem").write_text("key")
    text = (
        '[directories.push]\nkind = "scim"\n'
        + GRAPH
        + 'client_secret = "s"\nschedule = "*/15 * * * *"\njitter = 0\nconcurrency = 8\n'
        '[directories.okta-token]\nkind = "okta"\norg_url = "https://x.okta.com/"\ntoken = "t"\n'
        '[directories.okta-oauth]\nkind = "okta"\norg_url = "https://x.okta.com"\nclient_id = "c"\n'
        'private_key_file = "okta.pem"\n'
        '[directories."google.corp"]\nkind = "google"\nservice_account_file = "sa.json"\n'
        'subject = "a@x.com"\n'
    )
    dirs = parse(text, tmp_path).directories
    assert isinstance(dirs["push"], ScimDirectory)
    graph = dirs["entra"]
    assert isinstance(graph, GraphDirectory)
    assert (graph.schedule.cron, graph.schedule.interval, graph.jitter, graph.concurrency) == (
        "*/15 * * * *",
        None,
        0,
        8,
    )
    assert (
        isinstance(dirs["okta-token"], OktaDirectory) and dirs["okta-token"].org_url == "https://x.okta.com"
    )
    oauth = dirs["okta-oauth"]
    assert (
        isinstance(oauth, OktaDirectory)
        and oauth.api_token is None
        and oauth.private_key_file == tmp_path / "okta.pem"
    )
    google = dirs["google.corp"]
    assert isinstance(google, GoogleDirectory) and google.customer == "my_customer"


def test_auth0_validates_into_its_model(tmp_path: Path) -> None:
    text = (
        '[directories.a0]\nkind = "auth0"\ndomain = "x.eu.auth0.com"\nclient_id = "c"\n'
        'client_secret_env = "A0_SECRET"\nteams = "both"\n'
    )
    settings = parse(text, tmp_path, {"A0_SECRET": "s3cret"})
    a0 = settings.directories["a0"]
    assert isinstance(a0, Auth0Directory)
    assert (a0.teams, a0.users_source, a0.audience, a0.base_url) == ("both", "auto", None, None)
    assert a0.secret is not None and a0.secret.reveal() == "s3cret" and a0.secret.source == "env A0_SECRET"


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("30m", 1800), ("1h30m", 5400), ("2d", 172800), (15, 15)]
)
def test_durations(text: str | int, seconds: int) -> None:
    assert parse_duration(text) == seconds


# ------------------------------------------------------------------ the example file


def test_the_example_config_is_valid_as_shipped(tmp_path: Path) -> None:
    example = ROOT / "config.example.toml"
    parse(example.read_text(), tmp_path)


def test_the_example_config_is_valid_with_every_directory_uncommented(tmp_path: Path) -> None:
    text = (ROOT / "config.example.toml").read_text()
    head, sep, tail = text.partition("# Directories:")
    tail = re.sub(r"(?m)^# (?=\[directories|[a-z_]+ = )", "", tail)
    for name in ("entra-contoso.secret", "google-corp.json"):
        (tmp_path / name).write_text("x")
    env = {"SYNCD_OKTA_TOKEN": "t", "SYNCD_AUTH0_SECRET": "s", "SYNCD_KEYCLOAK_SECRET": "s"}
    env["SYNCD_ONELOGIN_SECRET"] = "s"
    s = parse(head + sep + tail, tmp_path, env)
    assert sorted(d.kind for d in s.directories.values()) == sorted(KINDS)


def test_the_example_config_documents_every_key() -> None:
    text = (ROOT / "config.example.toml").read_text()
    from syncd.config import models

    classes = [models.Settings, models.StoreSettings, models.ServerSettings, models.LogSettings]
    classes += [models.ScimDirectory, models.GraphDirectory, models.OktaDirectory, models.GoogleDirectory]
    classes += [models.OneLoginDirectory]
    classes += [models.ScopeSettings, models.SafetySettings]
    classes += [models.Auth0Directory]
    classes += [models.ConsoleSettings, models.OidcSettings]
    keys = {k for cls in classes for k in cls.model_fields} - {"store", "server", "log", "directories"}
    undocumented = sorted(k for k in keys if not re.search(rf"(?m)^[# ]*{k} *=|^#\s+{k}\s|\.{k}\]", text))
    assert undocumented == []


# ------------------------------------------------------------------ store URL from env or file

PG = "postgresql+psycopg://syncd:s3cr%23t@db.internal:5432/syncd"


def test_store_url_from_an_environment_variable(tmp_path: Path) -> None:
    s = parse('[store]\nurl_env = "SYNCD_DB"\n', tmp_path, {"SYNCD_DB": PG})
    assert s.store.url == PG and s.store.source == "env SYNCD_DB"
    assert "s3cr" not in s.store.display_url


def test_store_url_from_a_systemd_credential(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "store-url").write_text(PG + "\n")
    s = parse('[store]\nurl_file = "store-url"\n', tmp_path, {"CREDENTIALS_DIRECTORY": str(creds)})
    assert s.store.url == PG and s.store.source == f"file {creds / 'store-url'}"


@pytest.mark.parametrize(
    ("store", "env", "key", "message"),
    [
        ('url_env = "SYNCD_DB"', {}, "store.url_env", "environment variable SYNCD_DB is not set"),
        (
            'url_env = "SYNCD_DB"',
            {"SYNCD_DB": "mysql://u:topsecret@h/x"},
            "store.url_env",
            "holds no database",
        ),
        ('url_file = "nope"', {}, "store.url_file", "does not exist"),
        (f'url = "{PG}"\nurl_env = "SYNCD_DB"', {"SYNCD_DB": PG}, "store", "at most one of url, url_env"),
    ],
)
def test_store_url_sources_are_checked_without_showing_the_value(
    tmp_path: Path, store: str, env: dict[str, str], key: str, message: str
) -> None:
    ((k, _line, msg),) = problems(f"[store]\n{store}\n", tmp_path, env)
    assert k == key and message in msg and "topsecret" not in msg


def test_a_store_url_file_default_still_applies_when_no_key_is_given(tmp_path: Path) -> None:
    s = parse('state_dir = "st"\n[store]\n', tmp_path)
    assert s.store.url == f"sqlite:///{tmp_path / 'st' / 'syncd.db'}" and s.store.source == "value"


def test_config_check_validates_the_store_url_sources_and_never_prints_the_password(tmp_path: Path) -> None:
    from tests.cli.conftest import Cli

    cfg = tmp_path / "config.toml"
    cfg.write_text('[store]\nurl_env = "SYNCD_DB"\n')
    ok = Cli(cfg)("config", "check", env={"SYNCD_DB": PG})
    assert ok.exit_code == 0 and "env SYNCD_DB" in ok.stdout and "s3cr" not in ok.output
    bad = Cli(cfg)("config", "check", env={"SYNCD_DB": "mysql://u:topsecret@h/x"})
    assert bad.exit_code == 2 and "store.url_env" in bad.output and "topsecret" not in bad.output


# ------------------------------------------------------------------ keycloak

KEYCLOAK = (
    '[directories.kc]\nkind = "keycloak"\nserver_url = "https://sso.example.com/auth/"\nrealm = "acme"\n'
)


def test_keycloak_validates_with_a_secret_from_the_environment(tmp_path: Path) -> None:
    from syncd.config import KeycloakDirectory

    text = KEYCLOAK + 'client_id = "syncd"\nclient_secret_env = "KC_SECRET"\nteam_name = "path"\n'
    kc = parse(text, tmp_path, {"KC_SECRET": "s3"}).directories["kc"]
    assert isinstance(kc, KeycloakDirectory)
    assert (kc.server_url, kc.realm, kc.team_name, kc.token_realm) == (
        "https://sso.example.com/auth",
        "acme",
        "path",
        None,
    )
    assert kc.secret is not None and kc.secret.reveal() == "s3"


@pytest.mark.parametrize(
    ("extra", "key", "message"),
    [
        ('client_id = "c"\n', "directories.kc", "exactly one of client_secret"),
        (
            'client_id = "c"\nclient_secret = "a"\nclient_secret_env = "B"\n',
            "directories.kc",
            "exactly one of client_secret",
        ),
        ('client_id = "c"\nclient_secret = "a"\nteam_name = "id"\n', "directories.kc.team_name", "'name'"),
        ('client_secret = "a"\n', "directories.kc.client_id", "missing required key"),
    ],
)
def test_keycloak_problems(tmp_path: Path, extra: str, key: str, message: str) -> None:
    found = problems(KEYCLOAK + extra, tmp_path, {"B": "b"})
    assert any(k == key and message in m for k, _, m in found), found


def test_keycloak_realm_must_be_a_name(tmp_path: Path) -> None:
    text = KEYCLOAK.replace('"acme"', '"realms/acme"') + 'client_id = "c"\nclient_secret = "s"\n'
    assert any("realm's name" in m for _, _, m in problems(text, tmp_path))


# ------------------------------------------------------------------ onelogin

ONELOGIN = '[directories.ol]\nkind = "onelogin"\nbase_url = "https://acme.onelogin.com"\nclient_id = "c"\n'


def test_onelogin_directory_validates_with_roles_as_the_default_teams(tmp_path: Path) -> None:
    from syncd.config.models import OneLoginDirectory

    d = parse(ONELOGIN + 'client_secret_env = "OL"\n', tmp_path, {"OL": "s3cret"}).directories["ol"]
    assert isinstance(d, OneLoginDirectory) and d.teams == "roles"
    assert d.secret is not None and d.secret.reveal() == "s3cret"
    both = parse(ONELOGIN + 'client_secret = "s"\nteams = "both"\n', tmp_path).directories["ol"]
    assert both.teams == "both"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("extra", "key", "line", "pattern"),
    [
        ("", "directories.ol", 1, "exactly one of client_secret"),
        ('client_secret = "s"\nteams = "users"\n', "directories.ol.teams", 6, "roles"),
        ('client_secret = "s"\nbase_url = "acme"\n', "directories.ol.base_url", 6, ""),
    ],
    ids=["no secret", "bad teams", "bad url"],
)
def test_onelogin_bad_settings_name_the_key(
    tmp_path: Path, extra: str, key: str, line: int, pattern: str
) -> None:
    text = ONELOGIN + extra
    if key.endswith("base_url"):
        text = text.replace('base_url = "https://acme.onelogin.com"\n', "")
        line -= 1
    found = problems(text, tmp_path)
    assert len(found) == 1, found
    assert found[0][:2] == (key, line)
    assert re.search(pattern, found[0][2]), found[0][2]


CONSOLE_OIDC = '[console.oidc]\nissuer = "https://idp.example/"\nclient_id = "c"\n'


def test_console_defaults_and_oidc(tmp_path: Path) -> None:
    s = parse("", tmp_path)
    assert s.server.admin_listen == "127.0.0.1:8081" and not s.server.shared_listener
    assert s.console_url == "http://127.0.0.1:8081" and s.console.break_glass and s.console.oidc is None
    s = parse(
        CONSOLE_OIDC + 'client_secret_env = "OIDC"\nadmin_groups = ["admins"]\n', tmp_path, {"OIDC": "s3"}
    )
    assert s.console.oidc is not None and s.console.oidc.issuer == "https://idp.example/"  # kept exactly
    assert s.console.oidc.secret.reveal() == "s3" and s.console.oidc.secret.source == "env OIDC"


@pytest.mark.parametrize(
    ("extra", "key", "words"),
    [
        ('client_secret = "inline"\nadmin_groups = ["a"]\n', "console.oidc.client_secret", "unknown key"),
        ('client_secret_env = "OIDC"\n', "console.oidc", "admin_groups or admin_values"),
        ('client_secret_env = "OIDC"\nadmin_groups = ["a"]\nscopes = ["email"]\n', "console.oidc", "openid"),
    ],
)
def test_console_oidc_problems(tmp_path: Path, extra: str, key: str, words: str) -> None:
    found = problems(CONSOLE_OIDC + extra, tmp_path, {"OIDC": "s3"})
    assert any(k == key and words in m for k, _, m in found), found


def test_console_directory_must_be_a_pull_directory(tmp_path: Path) -> None:
    found = problems('[console]\ndirectory = "push"\n[directories.push]\nkind = "scim"\n', tmp_path)
    assert any("push-only" in m for _, _, m in found), found
    found = problems('[console]\ndirectory = "nope"\n', tmp_path)
    assert any("no directory named nope" in m for _, _, m in found), found
