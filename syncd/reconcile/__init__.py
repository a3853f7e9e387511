"""Reconcile: turn what an IdP says (a `Snapshot`) into changes in the store."""
