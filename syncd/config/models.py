"""The settings models: frozen, unknown keys forbidden, one model per directory kind."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictInt,
    ValidationInfo,
    model_validator,
)

from syncd.config.delivery import FeedSettings, WebhookSettings
from syncd.config.types import (
    DEFAULT_ADMIN_LISTEN,
    DEFAULT_LISTEN,
    DirectoryName,
    Duration,
    EnvSecret,
    ExistingFile,
    FileSecret,
    Listen,
    Schedule,
    Secret,
    StoreUrl,
    StoreUrlEnv,
    StoreUrlFile,
    Text,
    Url,
    context_of,
)

KINDS = ("scim", "graph", "okta", "google", "onelogin", "keycloak", "auth0")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def _one_of(self, *names: str, required: bool) -> None:
        given = [n for n in names if getattr(self, n) is not None]
        if len(given) > 1 or (required and not given):
            raise ValueError(
                f"give exactly one of {', '.join(names)}"
                if required
                else f"give at most one of {', '.join(given)}"
            )

    def _secret(self, name: str) -> Secret | None:
        return next((s for s in (getattr(self, f"{name}{x}") for x in ("", "_env", "_file")) if s), None)


class StoreSettings(_Model):
    """The database URL: `url` (the value), `url_env` (an environment variable holding it) or
    `url_file` (a file holding it; a relative path is looked up in $CREDENTIALS_DIRECTORY first,
    as systemd's `LoadCredential=store-url` provides). At most one; none means SQLite under
    `state_dir`. After validation `url` always holds the URL (a password in it is a secret:
    print `display_url`)."""

    url: StoreUrl | None = None
    url_env: StoreUrlEnv | None = None
    url_file: StoreUrlFile | None = None

    @model_validator(mode="after")
    def _resolve(self) -> StoreSettings:
        self._one_of("url", "url_env", "url_file", required=False)
        secret = self.url_env or self.url_file
        if secret is not None:
            object.__setattr__(self, "url", secret.reveal())  # frozen: set once, here
        return self

    @property
    def source(self) -> str:
        """Where the URL came from ("value", "env NAME", "file PATH"); never the URL."""
        secret = self.url_env or self.url_file
        return secret.source if secret is not None else "value"

    @property
    def display_url(self) -> str:
        """The URL with any password masked: the only form that may be printed or logged."""
        from sqlalchemy.engine import make_url

        return make_url(self.url).render_as_string(hide_password=True)


class ServerSettings(_Model):
    """`listen` serves only SCIM (`/scim/v2`) and health: the one address an IdP must reach.
    `admin_listen` serves the console, the admin API (`/v1`), `/metrics` and health: keep it
    on a private address. Both may be the same address (one listener serves everything;
    `syncd run` logs a warning and `syncd config check` notes it)."""

    listen: Listen = DEFAULT_LISTEN
    admin_listen: Listen = DEFAULT_ADMIN_LISTEN
    public_url: Url
    max_body_bytes: StrictInt = Field(default=10 * 1024 * 1024, gt=0)
    #: Processes serving SCIM (`syncd serve`); more than 1 needs a store on disk or PostgreSQL.
    workers: StrictInt = Field(default=1, ge=1, le=64)

    @property
    def shared_listener(self) -> bool:
        """True when SCIM and the admin paths share one listener (`listen == admin_listen`)."""
        return self.listen == self.admin_listen

    @model_validator(mode="before")
    @classmethod
    def _default_public_url(cls, data: Any) -> Any:
        if isinstance(data, dict) and "public_url" not in data:
            listen = data.get("listen")
            listen = listen if isinstance(listen, str) else DEFAULT_LISTEN  # else: reported on listen
            data = {**data, "public_url": f"http://{listen}"}
        return data


class OidcSettings(_Model):
    """`[console.oidc]`: sign-in with the organisation's OpenID Connect provider (authorization
    code flow with PKCE S256, state and nonce), found by `issuer` discovery. The client secret
    comes from `client_secret_env` or `client_secret_file` (never inline).

    Who is an admin: a user whose `admin_claim` claim (default "groups", a list or a string)
    holds one of `admin_groups`, or whose claim NAME holds one of `admin_values[NAME]`. At least
    one rule is required. `user_claim` names the claim that identifies the admin's directory
    user for the on-login sync (IdP id, userName or email, as `syncd login-sync` takes)."""

    issuer: Text  # kept exactly as given: the id_token's `iss` must equal it (Auth0's ends in "/")
    client_id: Text
    client_secret_env: EnvSecret | None = None
    client_secret_file: FileSecret | None = None
    scopes: tuple[Text, ...] = ("openid", "email", "profile")
    admin_groups: tuple[Text, ...] = ()
    admin_claim: Text = "groups"
    admin_values: dict[Text, tuple[Text, ...]] = {}
    user_claim: Text = "email"
    timeout: Duration = 10

    @model_validator(mode="after")
    def _check(self) -> OidcSettings:
        self._one_of("client_secret_env", "client_secret_file", required=True)
        from syncd.config.types import check_url

        check_url(self.issuer)
        if "openid" not in self.scopes:
            raise ValueError('scopes must include "openid"')
        if not self.admin_groups and not any(self.admin_values.values()):
            raise ValueError("give admin_groups or admin_values: otherwise no one can sign in as an admin")
        return self

    @property
    def secret(self) -> Secret:
        return self.client_secret_env or self.client_secret_file  # type: ignore[return-value]  # one is required


class ConsoleSettings(_Model):
    """`[console]`: the admin console on `[server] admin_listen`.

    `public_url` is the console's address as browsers reach it (default http://ADMIN_LISTEN;
    the OIDC redirect URI is PUBLIC_URL/signin/callback). `directory` names the directory whose
    on-login sync runs for an admin signing in with SSO. `break_glass` allows sign-in with an
    admin token (`syncd token create --admin`). Sessions end after `idle_timeout` without a
    request and `max_age` after sign-in. The session signing key comes from `secret_env` or
    `secret_file`; without either it is generated once into STATE_DIR/console-session.key (give
    every instance the same key when several serve one store)."""

    public_url: Url | None = None
    directory: DirectoryName | None = None
    break_glass: bool = True
    idle_timeout: Duration = 1800
    max_age: Duration = 12 * 3600
    secret_env: EnvSecret | None = None
    secret_file: FileSecret | None = None
    oidc: OidcSettings | None = None

    @model_validator(mode="after")
    def _check(self) -> ConsoleSettings:
        self._one_of("secret_env", "secret_file", required=False)
        if self.idle_timeout <= 0 or self.max_age <= 0:
            raise ValueError("idle_timeout and max_age must be longer than 0s")
        if self.secret is not None and len(self.secret.reveal()) < 32:
            raise ValueError(f"the session secret from {self.secret.source} is shorter than 32 characters")
        return self

    @property
    def secret(self) -> Secret | None:
        return self.secret_env or self.secret_file


class LogSettings(_Model):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["text", "json"] = "text"


class ScimDirectory(_Model):
    """Push only: the IdP's SCIM client writes through `/scim/v2` with this directory's token."""

    kind: Literal["scim"]


class ScopeSettings(_Model):
    """Which groups become teams, and which users are synced.

    `groups` (include) and `exclude_groups` hold group ids, shell globs on the group name
    (`eng-*`, case-insensitive) or regexes prefixed `re:`; no include rule means every group.
    `users`: "all" users the IdP reports, or only "members" of an included group.
    """

    groups: tuple[Text, ...] = ()
    exclude_groups: tuple[Text, ...] = ()
    users: Literal["all", "members"] = "all"

    @model_validator(mode="after")
    def _regexes(self) -> ScopeSettings:
        import re

        for rule in (*self.groups, *self.exclude_groups):
            if rule.startswith("re:"):
                try:
                    re.compile(rule[3:])
                except re.error as exc:
                    raise ValueError(f"bad regex {rule!r}: {exc}") from None
        return self


class SafetySettings(_Model):
    """Accidental-deletion prevention: a run that would deactivate users, archive teams or
    remove memberships above `max_removals` (count) or `max_removal_percent` (of what the
    directory holds, once it holds at least `min_base`) stops before writing anything."""

    max_removals: StrictInt = Field(default=500, ge=0)
    max_removal_percent: float = Field(default=20.0, ge=0, le=100)
    min_base: StrictInt = Field(default=20, ge=0)
    allow_deletes: bool = False


class PullDirectory(_Model):
    """Keys every pull connector shares. `jitter`, `time_budget` and `login_time_budget` are
    seconds; `concurrency` is parallel IdP requests; `max_connection_failures` in a row (no HTTP
    answer at all) stop a read, which then ends partial."""

    schedule: Annotated[Schedule, BeforeValidator(Schedule.parse)] = Schedule("1h", interval=3600)
    jitter: Duration = 120
    concurrency: StrictInt = Field(default=4, ge=1, le=64)
    time_budget: Duration = 900
    login_time_budget: Duration = 10
    max_connection_failures: StrictInt = Field(default=5, ge=1, le=1000)
    on_user_left: Literal["deactivate", "keep"] = "deactivate"
    on_group_left: Literal["archive", "keep"] = "archive"
    scope: ScopeSettings = ScopeSettings()
    safety: SafetySettings = SafetySettings()


class GraphDirectory(PullDirectory):
    """Microsoft Entra ID through Microsoft Graph (app registration, client credentials)."""

    kind: Literal["graph"]
    tenant_id: Text
    client_id: Text
    client_secret: Secret | None = None
    client_secret_env: EnvSecret | None = None
    client_secret_file: FileSecret | None = None
    certificate_path: ExistingFile | None = None
    base_url: Url = "https://graph.microsoft.com/v1.0"
    token_url: Url | None = None
    group_source: Literal["all", "security", "app_assigned"] = "all"
    service_principal_id: Text | None = None
    #: groups whose members are read in one JSON batch (1 = one request per group)
    batch_size: StrictInt = Field(default=20, ge=1, le=20)

    @model_validator(mode="after")
    def _credential(self) -> GraphDirectory:
        self._one_of(
            "client_secret", "client_secret_env", "client_secret_file", "certificate_path", required=True
        )
        return self

    @property
    def secret(self) -> Secret | None:
        return self._secret("client_secret")


class OktaDirectory(PullDirectory):
    """Okta Management API: an API token, or an OAuth service app (client_id + private key)."""

    kind: Literal["okta"]
    org_url: Url
    token: Secret | None = None
    token_env: EnvSecret | None = None
    token_file: FileSecret | None = None
    client_id: Text | None = None
    private_key_file: ExistingFile | None = None
    group_types: tuple[Literal["OKTA_GROUP", "APP_GROUP", "BUILT_IN"], ...] = ("OKTA_GROUP", "APP_GROUP")

    @model_validator(mode="after")
    def _credential(self) -> OktaDirectory:
        self._one_of("token", "token_env", "token_file", required=False)
        oauth = (self.client_id is not None, self.private_key_file is not None)
        if any(oauth) and not all(oauth):
            raise ValueError("OAuth needs both client_id and private_key_file")
        if all(oauth) == (self.api_token is not None):
            raise ValueError(
                "give either a token (token, token_env, token_file) or client_id with private_key_file"
            )
        return self

    @property
    def api_token(self) -> Secret | None:
        return self._secret("token")


class GoogleDirectory(PullDirectory):
    """Google Workspace Admin SDK Directory API: a service account with domain-wide delegation."""

    kind: Literal["google"]
    service_account_file: ExistingFile
    subject: Text
    customer: Text = "my_customer"
    domain: Text | None = None
    base_url: Url = "https://admin.googleapis.com"
    token_url: Url = "https://oauth2.googleapis.com/token"
    customer_members: Literal["expand", "refuse"] = "expand"


class Auth0Directory(PullDirectory):
    """Auth0 Management API v2: a Machine-to-Machine application (client credentials) with
    read:users, read:roles (and read:organizations, read:organization_members for orgs)."""

    kind: Literal["auth0"]
    domain: Text
    client_id: Text
    client_secret: Secret | None = None
    client_secret_env: EnvSecret | None = None
    client_secret_file: FileSecret | None = None
    audience: Url | None = None
    teams: Literal["roles", "organizations", "both"] = "roles"
    users_source: Literal["auto", "export", "list"] = "auto"
    base_url: Url | None = None

    @model_validator(mode="after")
    def _credential(self) -> Auth0Directory:
        self._one_of("client_secret", "client_secret_env", "client_secret_file", required=True)
        d = self.domain
        if "/" in d or ":" in d or "." not in d or d != d.strip():
            raise ValueError(f"domain must be the tenant's host name (acme.eu.auth0.com), not {d!r}")
        return self

    @property
    def secret(self) -> Secret | None:
        return self._secret("client_secret")


class KeycloakDirectory(PullDirectory):
    """Keycloak Admin REST API: a confidential client with a service account (client
    credentials). `server_url` is the server root (with `/auth` on the legacy context path);
    `token_realm` is the realm that issues the token, when the client lives in another realm
    (e.g. `master`); `team_name` is the group's `name` or its unique `path`."""

    kind: Literal["keycloak"]
    server_url: Url
    realm: Text
    client_id: Text
    client_secret: Secret | None = None
    client_secret_env: EnvSecret | None = None
    client_secret_file: FileSecret | None = None
    token_realm: Text | None = None
    team_name: Literal["name", "path"] = "name"

    @model_validator(mode="after")
    def _credential(self) -> KeycloakDirectory:
        self._one_of("client_secret", "client_secret_env", "client_secret_file", required=True)
        if "/" in self.realm or (self.token_realm and "/" in self.token_realm):
            raise ValueError("realm is the realm's name (as in /realms/NAME), not a URL or path")
        return self

    @property
    def secret(self) -> Secret | None:
        return self._secret("client_secret")


class OneLoginDirectory(PullDirectory):
    """OneLogin API v2: an API credential pair (client credentials), "Read users" scope."""

    kind: Literal["onelogin"]
    base_url: Url
    client_id: Text
    client_secret: Secret | None = None
    client_secret_env: EnvSecret | None = None
    client_secret_file: FileSecret | None = None
    teams: Literal["roles", "groups", "both"] = "roles"

    @model_validator(mode="after")
    def _credential(self) -> OneLoginDirectory:
        self._one_of("client_secret", "client_secret_env", "client_secret_file", required=True)
        return self

    @property
    def secret(self) -> Secret | None:
        return self._secret("client_secret")


DirectorySettings = Annotated[
    ScimDirectory
    | GraphDirectory
    | OktaDirectory
    | GoogleDirectory
    | OneLoginDirectory
    | KeycloakDirectory
    | Auth0Directory,
    Field(discriminator="kind"),
]


class ScimTarget(_Model):
    """A SCIM 2.0 service provider syncd provisions (the gateway's `/scim/v2`). `sources` are
    the directories it receives (None: every directory); `team_name` maps a team's name with
    `{name}` and `{directory}`; `timeout` is seconds per request; `member_chunk` the most
    members one PATCH carries; `full_reconcile` the schedule of the drift backstop."""

    kind: Literal["scim"]
    url: Url
    token: Secret | None = None
    token_env: EnvSecret | None = None
    token_file: FileSecret | None = None
    sources: tuple[DirectoryName, ...] | None = None
    team_name: Text = "{name}"
    users: Literal["members", "all"] = "members"
    on_user_left: Literal["deactivate", "delete"] = "deactivate"
    on_team_left: Literal["delete", "keep"] = "delete"
    full_reconcile: Annotated[Schedule, BeforeValidator(Schedule.parse)] = Schedule("1d", interval=86400)
    concurrency: StrictInt = Field(default=4, ge=1, le=64)
    timeout: Duration = 30
    member_chunk: StrictInt = Field(default=100, ge=1, le=10_000)
    safety: SafetySettings = SafetySettings()

    @model_validator(mode="after")
    def _check(self) -> ScimTarget:
        self._one_of("token", "token_env", "token_file", required=True)
        import string

        try:
            fields = {f for _, f, _, _ in string.Formatter().parse(self.team_name) if f is not None}
        except ValueError as exc:
            raise ValueError(f"bad team_name template {self.team_name!r}: {exc}") from None
        if not fields <= {"name", "directory"} or "name" not in fields:
            raise ValueError(
                f"team_name {self.team_name!r} may use only {{name}} and {{directory}}, and needs {{name}}"
            )
        return self

    @property
    def secret(self) -> Secret:
        return self._secret("token")  # type: ignore[return-value]  # one is required


TargetSettings = ScimTarget


def default_state_dir(environ: Mapping[str, str]) -> Path:
    """`$STATE_DIRECTORY` (systemd `StateDirectory=`, first entry), else the XDG state home."""
    if environ.get("STATE_DIRECTORY"):
        return Path(environ["STATE_DIRECTORY"].split(":")[0]).expanduser()
    xdg = environ.get("XDG_STATE_HOME")
    home = Path(environ["HOME"]) if environ.get("HOME") else Path.home()
    return (Path(xdg) if xdg else home / ".local" / "state") / "syncd"


class Settings(_Model):
    """The whole configuration. `source` is the file it came from (None: built-in defaults)."""

    state_dir: Path
    store: StoreSettings
    server: ServerSettings = Field(default_factory=lambda: ServerSettings.model_validate({}))
    log: LogSettings = LogSettings()
    console: ConsoleSettings = ConsoleSettings()
    directories: dict[DirectoryName, DirectorySettings] = {}
    targets: dict[DirectoryName, TargetSettings] = {}
    feed: FeedSettings = FeedSettings()
    webhooks: dict[DirectoryName, WebhookSettings] = {}
    _source: Path | None = PrivateAttr(default=None)

    @property
    def source(self) -> Path | None:
        return self._source

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict):
            return data
        ctx, data = context_of(info), dict(data)
        state = data.get("state_dir")
        if state is None:
            data["state_dir"] = state = default_state_dir(ctx.environ)
        elif isinstance(state, str) and state.strip():
            data["state_dir"] = state = ctx.path(state)
        store = data.setdefault("store", {})
        given = isinstance(store, dict) and any(k in store for k in ("url", "url_env", "url_file"))
        if isinstance(store, dict) and not given and isinstance(state, Path):
            data["store"] = {**store, "url": f"sqlite:///{state / 'syncd.db'}"}
        return data

    @property
    def console_url(self) -> str:
        """The console's public base URL (no trailing slash)."""
        return (self.console.public_url or f"http://{self.server.admin_listen}").rstrip("/")

    @model_validator(mode="after")
    def _console_directory(self) -> Settings:
        d = self.console.directory
        if d is not None and d not in self.directories:
            raise ValueError(
                f"console.directory: no directory named {d} "
                f"(configured: {', '.join(self.directories) or 'none'})"
            )
        if d is not None and self.directories[d].kind == "scim":
            raise ValueError(f"console.directory: {d} is push-only (kind scim); name a pull directory")
        return self

    @model_validator(mode="after")
    def _target_sources(self) -> Settings:
        for name, t in self.targets.items():
            unknown = [d for d in t.sources or () if d not in self.directories]
            if unknown:
                raise ValueError(
                    f"targets.{name}.sources: no directory named {', '.join(unknown)} "
                    f"(configured: {', '.join(self.directories) or 'none'})"
                )
        return self
