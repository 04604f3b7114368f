"""Database access: models, async engine and sessions, migrations."""
