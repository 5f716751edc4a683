"""Identity (Keystone v3): users, projects, roles, tokens, the catalog. Every service stands on it."""
