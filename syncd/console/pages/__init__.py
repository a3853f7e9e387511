"""The console's pages; each module exposes `router: APIRouter` (paths relative to the console root)."""

#: Page modules, in navigation order; `syncd.console.app` includes each one's router.
PAGES: tuple[str, ...] = ("overview", "runs", "teams", "users", "audit", "tokens")
