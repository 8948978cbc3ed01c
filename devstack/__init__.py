"""devstack: settings, catalog, phases and topology; plain data, no resources."""
