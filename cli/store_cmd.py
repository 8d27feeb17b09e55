"""`multiraft store ...` and `multiraft cluster ...`: run store processes."""

import click


@click.group()
def store() -> None:
    """Run a store process."""


@click.group()
def cluster() -> None:
    """Run a local cluster of store processes."""
