"""Quiet regions (TiKV's hibernate regions, CockroachDB's quiescence): a
region with nothing to do costs nothing. Its replicas are not ticked, so
its leader sends no heartbeats and its followers never time out; a turn
never visits it.

Going quiet. At each tick an awake leader checks that the region is idle:
no queued or proposed writes, no reads waiting, no membership change or
leader transfer under way, everything applied, and every replica's log
matching its own (so each knows all there is). After QUIET_AFTER_TICKS
idle ticks its next heartbeats carry the QUIESCE flag and the leader goes
quiet once they are out. A follower that gets such a heartbeat from its
leader, at its term, with everything committed, goes quiet too (otherwise
it stays awake, times out, and its PreVote wakes the leader).

Waking. A client request the replica may serve, any Raft message other
than a quiesce heartbeat or a heartbeat response, a split, a membership
change, a leader transfer or a snapshot wakes a replica: it is ticked
again from where it stopped. Failure detection moves to the store level:
every store pings every other store every other tick (`ping`; a gossip
round counts as one), and when one falls
silent for an election timeout, each store wakes the regions it led; when
one comes back, the regions with a replica there. The followers of a dead
leader then elect a new one as usual, PreVote and randomized timeouts
included; a follower whose leader's store is alive never campaigns.

The Raft core knows nothing of this: the store decides what not to tick,
and heartbeats are the core's own, flagged on their way out.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet

from ...transport import codec
from ..context import StoreContext
from ..lease import lease_duration
from ..peer import Peer

PING_TICKS = 2
"""Ticks between two pings of every other store (5 a second at the default
tick; a store falls silent after an election timeout, 10 ticks)."""
QUIET_AFTER_TICKS = 4
"""Idle ticks before a leader quiets its region (two heartbeat rounds at
the default heartbeat_tick of 2)."""


def wake(ctx: StoreContext, peer: Peer) -> None:
    """`peer`'s region has work: look at it this turn, tick it again, and
    start counting idle ticks anew."""
    ctx.touch(peer)
    if peer.quiet:
        peer.quiet = False
        ctx.awake.add(peer.region.id)
    peer.idle_ticks = 0
    peer.quiescing = False


def tick(ctx: StoreContext, peer: Peer, lost: AbstractSet[int] = frozenset()) -> None:
    """One tick of an awake replica; a leader counts idle ticks. `lost`:
    the stores that fell silent (`StoreWatch.lost`)."""
    peer.raw_node.tick()
    if not (ctx.config.hibernate and peer.is_leader()):
        return
    if is_idle(peer, lost):
        peer.idle_ticks += 1
        peer.quiescing = peer.idle_ticks >= QUIET_AFTER_TICKS
    else:
        peer.idle_ticks = 0
        peer.quiescing = False
    if peer.quiescing and len(peer.region.peers) == 1:
        _go_quiet(ctx, peer)  # alone: nobody to tell


def is_idle(peer: Peer, lost: AbstractSet[int] = frozenset()) -> bool:
    """Nothing to do and every replica has it all, except those on stores
    that fell silent: a leader waits for no dead replica to go quiet (its
    region would stay awake as long as the store is down), and the store's
    return wakes it to bring that replica up to date."""
    if peer.writes or peer.reads or peer.proposals or peer.read_waits or peer.ready_reads:
        return False
    st = peer.raw_node.status()
    last = st.last_index
    return (
        st.applied == st.hard_state.commit == last
        and st.pending_conf_index <= st.applied
        and not st.lead_transferee
        and all(
            pr.match == last or peer.store_of_peer(pid) in lost for pid, pr in st.progress.items()
        )
    )


def beat_flags(peer: Peer) -> int:
    """The flags of a heartbeat `peer` (a leader) sends now."""
    return codec.QUIESCE if peer.quiescing else 0


def after_send(ctx: StoreContext, peer: Peer, sent_quiesce: bool) -> None:
    """A leader whose quiesce heartbeats are out goes quiet."""
    if sent_quiesce and peer.quiescing:
        _go_quiet(ctx, peer)


def on_heartbeat(ctx: StoreContext, peer: Peer, frm: int, term: int, flags: int) -> None:
    """A follower stepped a heartbeat from `frm`: a plain one means its leader
    is awake; a quiesce one quiets it if it has all its leader has."""
    if not flags & codec.QUIESCE or not ctx.config.hibernate:
        wake(ctx, peer)
        return
    st = peer.raw_node.basic_status()
    hs = st.hard_state
    if st.soft_state.lead == frm and hs.term == term and hs.commit == st.last_index:
        _go_quiet(ctx, peer)
    else:
        wake(ctx, peer)


class StoreWatch:
    """Store-level failure detection for quiet regions: one ping per store
    pair every PING_TICKS ticks, and a wake-up of the regions concerned when
    a store falls silent for an election timeout or comes back."""

    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx
        config = ctx.config
        self.silent_after = config.raft.election_tick * config.tick_interval
        self.reachable: set[int] = set()
        self.lost: set[int] = set()
        """Stores that were reachable and fell silent, until they are back."""
        self.ping = codec.encode_peer_batch(codec.PeerBatch(ctx.cluster_id, ctx.store_id))
        self.came_back = False
        """Some store became reachable since the last `take_came_back`."""

    def tick(self, ping: bool) -> None:
        """Ping the other stores (unless this tick's gossip does it) and wake
        the regions of those whose state changed."""
        ctx = self.ctx
        if ping:
            for store_id in ctx.book.addrs:
                if store_id != ctx.store_id:
                    ctx.outbox.frame(store_id, self.ping)
        reachable = set(ctx.book.heard_within(self.silent_after, ctx.now))
        for store_id in self.reachable - reachable:
            self._wake_regions_led_by(store_id)
            self.lost.add(store_id)
        for store_id in reachable - self.reachable:
            self._wake_regions_on(store_id)
            self.lost.discard(store_id)
        self.came_back |= bool(reachable - self.reachable)
        self.reachable = reachable

    def take_came_back(self) -> bool:
        came_back, self.came_back = self.came_back, False
        return came_back

    def _wake_regions_led_by(self, store_id: int) -> None:
        """`store_id` fell silent: wake the quiet regions it led, so that
        their followers elect another leader. The regions where it only held
        a follower stay quiet: their leaders lose nothing by not hearing
        from it (a request wakes them, and they count their quorum again),
        and waking them would put every region it held on the survivors'
        ticks while they hold a third of them in elections.

        A woken follower is credited the election timeout of ticks it
        missed (`_lose_leader`): its randomized timeout then fires within
        the next election timeout, spread over those ticks, instead of one
        to two election timeouts after the store noticed. Until it hears of
        a new leader it names none to clients, who would otherwise wait on
        the dead store."""
        for peer in self.ctx.peers.values():
            if peer.quiet and peer.leader_store() == store_id:
                wake(self.ctx, peer)
                _lose_leader(self.ctx, peer)

    def _wake_regions_on(self, store_id: int) -> None:
        """`store_id` came back: wake every quiet region with a replica
        there, so that leaders bring the returning replica up to date."""
        for peer in self.ctx.peers.values():
            if peer.has_replica_on(store_id):
                peer.leader_lost = 0
                if peer.quiet:
                    wake(self.ctx, peer)


def on_vote_request(ctx: StoreContext, peer: Peer, from_store: int) -> None:
    """A replica is asked for its (pre-)vote: if nothing came from its
    leader's store for longer than any lease that store could hold, let it
    vote now (as the store's own detection would a moment later), instead
    of refusing and making the candidate wait out another election timeout
    (CockroachDB forgets a dead leader on a vote request the same way)."""
    leader_store = peer.leader_store()  # None once lost: credited once only
    if leader_store is None or leader_store == from_store or peer.is_leader():
        return
    config = ctx.config
    # Longer than the lease by a tick: the leader's lease counts from a
    # round it sent before this store last heard from it.
    lease = lease_duration(config.raft.election_tick, config.tick_interval)
    silence = lease + config.tick_interval
    if ctx.book.last_seen.get(leader_store, ctx.now) <= ctx.now - silence:
        _lose_leader(ctx, peer)


def _lose_leader(ctx: StoreContext, peer: Peer) -> None:
    """`peer`'s leader's store fell silent: credit the replica the election
    timeout of ticks it missed while quiet (nothing came from that store
    for that long, which its own ticks would have counted, so the leader's
    lease, shorter, has run out), and name no leader to clients until that
    store is back (`Peer.leader_lost`)."""
    peer.leader_lost = peer.soft_state.lead
    peer.gossip_due = True
    if not peer.frozen:
        for _ in range(ctx.config.raft.election_tick):
            peer.raw_node.tick()


def _go_quiet(ctx: StoreContext, peer: Peer) -> None:
    peer.quiet = True
    peer.quiescing = False
    peer.idle_ticks = 0
    ctx.awake.discard(peer.region.id)
