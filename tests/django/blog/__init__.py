"""A small installed app whose schemaless models the Django tests use."""
