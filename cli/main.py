"""Entry point of the `multiraft` console script (click group)."""

import click


@click.group()
@click.version_option(package_name="multiraft")
def main() -> None:
    """multiraft: a sharded, replicated key-value store."""


if __name__ == "__main__":
    main()
