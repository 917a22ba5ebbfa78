"""The revisions, oldest first by `down_revision`; each lists the tables it creates in `creates`
(bot/storage/migrate.py uses that to adopt a database made before migrations)."""
