"""The admin console: server-rendered pages on the admin listener (`[server] admin_listen`).

Layout (one module per concern):
- `app.py`      builds the console router/app: session and CSRF middleware, sign-in routes,
                and every router in `pages/` (each page module exposes `router: APIRouter`);
- `auth/`       OpenID Connect sign-in (authlib), break-glass admin-token sign-in, sessions,
                CSRF, idle timeout; sets `request.state.admin` for signed-in admins;
- `deps.py`     the page-side contract: `require_admin`, `csrf_token`, `DaemonState` access;
- `render.py`   the Jinja2 environment (autoescape always on) and `page()`;
- `pages/`      one module per page: overview, runs, teams, users, audit, tokens;
- `templates/`  Jinja2 templates, all extending `base.html`; `static/` hand-written CSS/JS.

Invariants: every name from an IdP or SCIM client reaches HTML only through Jinja2's
autoescape (never `|safe`, never `Markup` of stored data); every state-changing request is a
POST carrying the session's CSRF token; every console action is audited with the admin's
identity (`Admin.actor`).
"""
