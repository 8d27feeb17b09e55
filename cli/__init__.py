"""The `multiraft` command line."""
