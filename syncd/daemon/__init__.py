"""The daemon (`syncd run`): scheduled pulls, on-login sync, the admin API, health and metrics,
served next to the SCIM endpoint by one process. Entry point: `syncd.daemon.main.run_daemon`."""
