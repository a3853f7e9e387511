"""Pull connectors, one module per IdP over its official SDK (see `connectors.base`)."""
