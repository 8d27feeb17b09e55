"""A Redis-protocol gateway: RESP in (parsed by hiredis), `AsyncClient`
calls out, so redis-cli, redis-py and redis-benchmark reach the cluster."""
