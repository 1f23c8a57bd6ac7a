"""The replayer: RESTORING's work, and the straggler replay after failback.

It implements continuity.services.replay_hook.Replayer for the failover controller
(start on entering RESTORING, stop on leaving it, progress every monitor cycle) and runs
a loop in ``continuity serve`` (or in ``continuity replay`` when no server runs). What it
does follows from the failover state (continuity.services.replay_runs), so a restart
resumes it.

One step: plan (replay_planner), deliver what is due with ``concurrency`` workers under
the flow control (replay_dispatch, replay_delivery), warn the admins of messages close to
being given up and prune old replayed copies (replay_finish.Upkeep), and when the run is
drained: verify on the primary, write the manifest, complete the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from continuity.adapters.imap_append import ImapSessionError, ImapTarget
from continuity.adapters.imap_auth import login_from_settings
from continuity.adapters.imap_guard import ReplyLimits
from continuity.adapters.smtp_client import SmtpDelivery
from continuity.config.outbound import OutboundSettings
from continuity.config.replay import DedupCheck, ReplayMethod
from continuity.config.settings import Settings
from continuity.config.types import HostPort
from continuity.core.failover import FailoverRecord
from continuity.core.replay_flow import FlowControl, FlowLimits
from continuity.core.replay_journal import RetryPolicy
from continuity.core.replay_mailbox_flow import MailboxFlows, MailboxLimits
from continuity.core.replay_plan import Channel
from continuity.core.replay_records import ItemUpdate, ReplayRun, RunKind, RunStatus
from continuity.errors import ContinuityError
from continuity.services.filter_processes import ProcessPipeline
from continuity.services.filtering import Evaluator, FilterPipeline
from continuity.services.gateway import tls_context
from continuity.services.replay_delivery import DeliveryContext, FlowSlots
from continuity.services.replay_dispatch import Dispatcher
from continuity.services.replay_finish import ReplayAlerts, Upkeep, complete_run
from continuity.services.replay_gate import ReplayGate
from continuity.services.replay_hook import ReplayProgress
from continuity.services.replay_planner import PrimaryAddresses, ReplayPlanner, folder_map
from continuity.services.replay_preview import confirm_restoration
from continuity.services.replay_runs import RunKeeper, replay_mode
from continuity.services.replay_status import Pace, ReplayStatus, collect_status, describe, quick_status
from continuity.store.group_commit import GroupCommitter
from continuity.store.protocol import Store

log = logging.getLogger("continuity.replay")


def imap_target(settings: Settings) -> ImapTarget | None:
    """The primary's IMAP with the login [replay] auth describes, or None when not configured."""
    replay = settings.replay
    login = login_from_settings(replay)
    if login is None or not settings.primary.configured:
        return None
    tls = tls_context(replay.tls_verify, str(replay.ca_file) if replay.ca_file else None)
    return ImapTarget(
        settings.primary.host,
        settings.primary.imap_port,
        tls,
        replay.timeout,
        login,
        ReplyLimits(replay.reply_line_max, replay.reply_lines_max, replay.reply_fetch_max, replay.reply_listing_max),
    )


def smtp_delivery(settings: Settings) -> SmtpDelivery | None:
    """SMTP to the primary's receive connector, when [replay] method = smtp."""
    replay = settings.replay
    if replay.method is not ReplayMethod.SMTP or not settings.primary.configured:
        return None
    target = str(HostPort(settings.primary.host, settings.primary.smtp_port))
    outbound = OutboundSettings(smart_host=target, tls=replay.smtp_tls, ca_file=replay.ca_file, timeout=replay.timeout)
    return SmtpDelivery(outbound, settings.smtp.hostname)


class ReplayService:
    """Replays the standby's mail into the primary; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        state: Callable[[], FailoverRecord] | None = None,
        pipeline: FilterPipeline | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        replay = settings.replay
        self.settings = settings
        self._store = store
        self._state: Callable[[], FailoverRecord] = state or FailoverRecord
        self._clock = clock
        self.imap = imap_target(settings)
        self._smtp = smtp_delivery(settings)
        self.flow = FlowControl(
            FlowLimits(replay.concurrency, replay.rate, replay.throttle_pause, replay.throttle_pause_max,
                       replay.latency_factor)
        )  # fmt: skip
        self._slots = FlowSlots(self.flow)
        self.mailbox_flows = MailboxFlows(
            MailboxLimits(replay.mailbox_rate, replay.throttle_pause, replay.throttle_pause_max)
        )
        self._workers: ProcessPipeline | None = None
        self.gate = ReplayGate(store, self._evaluator(pipeline))
        primary = PrimaryAddresses(settings.primary.host, replay.primary_networks)
        self.planner = ReplayPlanner(store, replay, primary, clock)
        self.runs = RunKeeper(store, clock)
        self._dispatcher = Dispatcher(settings, store, self._smtp, clock)
        alerts = ReplayAlerts(store, settings.notify, settings.outbound, settings.smtp.hostname)
        self._alerts = alerts
        self._upkeep = Upkeep(store, settings, alerts)
        self._committer: GroupCommitter[ItemUpdate] = GroupCommitter(store.replay.record, 256)
        self._policy = RetryPolicy(replay.retry_initial, replay.retry_max, replay.give_up_after, replay.warn_before)
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._stopping = False
        self._recovered = False
        self._background = False
        self.delivered = 0
        self.detail = ""
        self._imap_rests_until = 0.0  # a reply broke a bound: no IMAP delivery before this (clock time)

    # -- wiring -----------------------------------------------------------------------------

    def use_pipeline(self, pipeline: FilterPipeline | ProcessPipeline | None) -> None:
        """What judges every message again: serve's filter workers, or a pipeline (services/app.py, replay_local.py)."""
        self.gate.pipeline = self._evaluator(pipeline)

    def _evaluator(self, pipeline: FilterPipeline | ProcessPipeline | None) -> Evaluator | None:
        """The workers as given, or pipeline run in worker processes when [replay] filter_processes asks for them."""
        processes = self.settings.replay.filter_processes
        if pipeline is None or isinstance(pipeline, ProcessPipeline) or processes == 0:
            return pipeline
        if self._workers is None:  # the workers build the same pipeline from the same settings
            self._workers = ProcessPipeline(self.settings, processes)
        return self._workers

    def follow(self, state: Callable[[], FailoverRecord]) -> None:
        """Where the current failover record comes from (the controller's)."""
        self._state = state

    def wake(self) -> None:
        """Look for work now."""
        self._wake.set()

    # -- the Replayer protocol --------------------------------------------------------------

    async def start(self) -> None:
        self._stopping = False
        record = self._state()
        if replay_mode(self.settings, record) is RunKind.RESTORATION:
            await self.runs.current(RunKind.RESTORATION, record)
        self.wake()

    async def stop(self) -> None:
        self._stopping = True
        latest = await self._store.replay.latest_run(RunKind.RESTORATION)
        if latest is not None and latest.status is not RunStatus.COMPLETED:
            await self._store.replay.set_run_status(latest.id, RunStatus.STOPPED, "RESTORING was left")
        self.wake()

    async def progress(self) -> ReplayProgress:
        record = self._state()
        run = await self.runs.restoration_run(record)
        if run is None:
            waiting = await self._store.replay.unplanned_count() + await self._store.replay.open_count()
            if waiting == 0:
                return ReplayProgress(True, "nothing waits for replay")
            if replay_mode(self.settings, record) is None:
                why = "replay is disabled ([replay] enabled)" if self.settings.primary.configured else "no primary"
                return ReplayProgress(False, f"{waiting} message copy(ies) wait for replay, but {why}")
            return ReplayProgress(False, f"{waiting} message copy(ies) wait for replay; the run starts shortly")
        if run.status is RunStatus.COMPLETED:
            return ReplayProgress(True, f"replay run {run.id} complete, manifest {run.manifest_path}")
        if not self._background and await self.runs.trivially_done(run):
            async with self._lock:
                await complete_run(self._store, run, self.imap, self.settings, self._alerts, self._clock())
            return ReplayProgress(True, f"nothing to replay (run {run.id})")
        status = await quick_status(self._store, run)
        flow = f"; flow: {self.flow.describe()}" if self.flow.throttles or self.flow.slowdowns else ""
        if self.mailbox_flows.throttles:
            flow += f"; per mailbox: {self.mailbox_flows.describe()}"
        return ReplayProgress(False, describe(status, self.settings, self.imap is not None) + flow)

    # -- status and operator actions ---------------------------------------------------------

    async def status(self) -> ReplayStatus:
        """The latest run and its per-mailbox counts."""
        return await collect_status(self._store, await self._store.replay.latest_run(), Pace.of(self.settings))

    async def confirm(self, actor: str, note: str) -> ReplayRun | None:
        """Record an operator's confirmation of the run awaiting it; None when none waits."""
        confirmed = await confirm_restoration(self._store, actor, note)
        self.wake()
        return confirmed

    # -- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Work until cancelled (continuity serve)."""
        self._background = True
        while True:
            try:
                worked = await self.step()
            except ContinuityError as exc:
                log.error("replay step failed: %s", exc)
                worked = False
            except Exception:
                log.exception("replay step failed unexpectedly")
                worked = False
            if not worked:
                await self._idle()

    async def run_until_complete(self) -> ReplayRun | None:
        """Work until the restoration run is complete or needs a confirmation (continuity replay)."""
        self._background = True
        while True:
            await self.step()
            record = self._state()
            run = await self.runs.restoration_run(record)
            if run is None or run.status is RunStatus.COMPLETED or run.needs_confirmation:
                return run
            if replay_mode(self.settings, record) is not RunKind.RESTORATION:
                return run
            await self._idle()

    async def close(self) -> None:
        """Let workers stop and the outcomes in flight be committed (before the store closes)."""
        self._stopping = True
        await self.gate.drain()
        await self._committer.drain()
        if self._workers is not None:
            await self._workers.close()

    async def _idle(self) -> None:
        timeout = self.settings.replay.poll
        due = await self._store.replay.next_due()
        if due is not None:
            timeout = min(timeout, max(0.05, due - self._clock()))
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    async def step(self) -> bool:
        """Plan, deliver what is due, upkeep, finish a drained run; True when something was delivered."""
        async with self._lock:
            if not self._recovered:
                interrupted = await self._store.replay.interrupted(self._clock())
                self._recovered = True
                if interrupted:
                    log.warning("replay: %d delivery(ies) were interrupted; the primary is checked first", interrupted)
            if self.settings.replay.enabled:
                # Warnings before a give-up and the retention of replayed copies, whatever the state.
                await self._upkeep.run(self._clock())
            record = self._state()
            kind = replay_mode(self.settings, record)
            if kind is None:
                return False
            if kind is RunKind.RESTORATION:
                self._stopping = False
            run = await self.runs.current(kind, record)
            if run is None or run.status is RunStatus.COMPLETED:
                return False
            resync = kind is RunKind.RESTORATION
            planning: asyncio.Future[int] | None = None
            if run.compromise:
                # The operator confirms what will be delivered: all of it is planned first.
                await self.planner.pass_(run, resync=resync)
            else:
                # Delivery starts with the first planned items while the rest is planned (a
                # large run takes seconds to plan: 20,000 items about one).
                planning = asyncio.ensure_future(self.planner.pass_(run, resync=resync))
            try:
                run = await self._store.replay.get_run(run.id) or run
                if run.needs_confirmation:
                    self.detail = f"run {run.id} waits for an operator's confirmation ('continuity replay')"
                    return False
                delivered = await self._deliver(run, planning)
            finally:
                if planning is not None:
                    await planning
            await self._upkeep.run(self._clock())  # what this pass deferred may be due for a warning
            # Planning has caught up (awaited above): with nothing open, the run is reconciled and completed.
            if await self._store.replay.open_count(run.id) == 0:
                try:
                    self.detail = await complete_run(
                        self._store, run, self.imap, self.settings, self._alerts, self._clock()
                    )
                except ImapSessionError as exc:
                    self.detail = f"verification waits for the primary: {exc.detail}"
            return delivered > 0

    async def _deliver(self, run: ReplayRun, planning: asyncio.Future[int] | None) -> int:
        resting = self._clock() < self._imap_rests_until
        imap = self.imap is not None and not resting
        channels = ([Channel.IMAP] if imap else []) + ([Channel.SMTP] if self._smtp else [])
        if not channels:
            if not resting:
                self.detail = "nothing can be delivered: set [replay] master_user and master_password"
            return 0
        self.gate.forget()
        context = DeliveryContext(
            gate=self.gate,
            slots=self._slots,
            committer=self._committer,
            policy=self._policy,
            folders=folder_map(self.settings.replay),
            imap=self.imap,
            check_always=self.settings.replay.dedup_check is DedupCheck.ALWAYS,
            clock=self._clock,
            mailboxes=self.mailbox_flows,
            max_message_size=self.settings.replay.max_message_size,
        )
        context.stopping = lambda: (
            self._stopping or bool(context.gave_up) or replay_mode(self.settings, self._state()) is not run.kind
        )
        delivered = await self._dispatcher.deliver(run, context, channels, planning)
        self.delivered += delivered
        await self._note_give_up(run, context.gave_up, delivered)
        return delivered

    async def _note_give_up(self, run: ReplayRun, gave_up: str, delivered: int) -> None:
        """After a pass: rest from the primary's IMAP when a reply broke a bound; clear the note once it delivers.

        The rest lasts retry_initial, the wait of a deferred message; the run's detail (shown by
        ``continuity replay status``) says why.
        """
        current = await self._store.replay.get_run(run.id) or run
        if gave_up:
            self._imap_rests_until = self._clock() + self.settings.replay.retry_initial
            self.detail = f"gave up on the primary's IMAP until the next retry: {gave_up}"
            await self._store.replay.set_run_status(current.id, current.status, self.detail)
        elif delivered and current.detail and current.detail == self.detail:
            self.detail = ""
            await self._store.replay.set_run_status(current.id, current.status, "")
