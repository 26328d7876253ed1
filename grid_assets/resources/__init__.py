"""One Dagster resource per external system."""
