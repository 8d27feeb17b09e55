"""Entry point of the `multiraft` console script (click group).

Every error is one line on stderr; exit codes are listed in cli/common.py.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click

from .bench import bench
from .kv import kv
from .redis_cmd import redis
from .region import region, status
from .security_cmd import keys, trust
from .store_cmd import cluster, store
from .verify_cmd import verify


class OneLineErrors(click.Group):
    """A click group whose usage and runtime errors print one stderr line
    (scripts parse it; the full usage is one `--help` away)."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            code = rv if isinstance(rv, int) and not isinstance(rv, bool) else 0
        except click.ClickException as e:
            click.echo(f"Error: {_one_line(e)}", err=True)
            code = e.exit_code
        except click.Abort:
            click.echo("Aborted!", err=True)
            code = 1
        if standalone_mode:
            sys.exit(code)
        return code


def _one_line(e: click.ClickException) -> str:
    message = " ".join(e.format_message().split())
    ctx = getattr(e, "ctx", None)
    if isinstance(e, click.UsageError) and ctx is not None:
        message += f" (see '{ctx.command_path} --help')"
    return message


@click.group(cls=OneLineErrors)
@click.version_option(package_name="multiraft")
def main() -> None:
    """multiraft: a sharded, replicated key-value store.

    Client commands take --cluster HOST:PORT[,...] after the subcommand
    (default: $MULTIRAFT_CLUSTER); any store of the cluster works.

    \b
    Exit codes:
      0  success
      1  negative answer (kv get: absent key; kv cas: not swapped)
      2  bad usage or input
      3  the operation failed (timeout, cluster error)
    """


main.add_command(store)
main.add_command(cluster)
main.add_command(kv)
main.add_command(region)
main.add_command(status)
main.add_command(bench)
main.add_command(keys)
main.add_command(trust)
main.add_command(redis)
main.add_command(verify)


if __name__ == "__main__":
    main()
