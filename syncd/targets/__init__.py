"""Delivery targets: syncd as a SCIM 2.0 client that provisions a downstream service.

- `errors`: the target error tree (one boundary in `client`);
- `client`: the SCIM client over an injected httpx transport, with retry and request counts;
- `paging`: how a target's lists are read (startIndex/count, never trusting totalResults);
- `desired`: the store's users and teams of a target's sources, mapped for the target;
- `state`: the id map and per-target delivery state in the store;
- `diff` (pure) → `plan` → `safety` → `apply`: the full reconcile;
- `deliver`: incremental delivery from the change feed; `worker`: the daemon's loop.
"""
