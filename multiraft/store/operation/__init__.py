"""The store's capabilities, one module each, every one holding both the
proposing side (checks, queues, proposals) and the applying side of what it
does, as TiKV's raftstore-v2 `operation/` does:

| module        | capability                                                   |
| ------------- | ------------------------------------------------------------ |
| `write`       | put / delete / cas: accept, propose one entry per turn, apply exactly once |
| `read`        | get / scan: accept, one ReadIndex per turn, serve once applied |
| `split`       | split a region: propose, apply (no data moves), start the new replica |
| `conf_change` | replica changes: the next step towards a goal, apply          |
| `peer_life`   | replicas come and go: create, drop, destroy a stale one       |
| `snapshot`    | snapshots streamed out and in, installed over turns           |
| `ready`       | a turn's Readies: send, persist, apply, advance               |

They take a `StoreContext`, never the `Store`; `ready` applies committed
entries through `write`, `split` and `conf_change`, collecting the turn's
effects in a `TurnBatch` (`batch`).
"""
