"""Wire the appliance together and run it in one event loop until SIGTERM or SIGINT.

This is the only module that picks concrete classes: the store from the settings,
the SMTP and web listeners, the ingest service and the background tasks.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from dataclasses import dataclass, field

from continuity.adapters.smtp_server import SmtpListener
from continuity.adapters.tls import server_context
from continuity.adapters.web_server import WebListener
from continuity.config.settings import Settings
from continuity.config.types import HostPort
from continuity.core.client_limits import ClientLimiter, ClientLimitPolicy
from continuity.core.failover import FailoverState
from continuity.core.models import IncomingMessage
from continuity.directory.core.records import SourceKind
from continuity.directory.periodic import sync_periodically
from continuity.directory.wiring import build_notifier, build_sync
from continuity.services.content_reader import WorkerContentReader
from continuity.services.data_dir_lock import DataDirLock
from continuity.services.directory import DirectoryCache
from continuity.services.failover_status import since_text
from continuity.services.failover_wiring import FailoverServices, build_failover, start_tasks
from continuity.services.feeds_wiring import FeedServices, build_signals, start_feeds
from continuity.services.feeds_wiring import start_tasks as start_feed_tasks
from continuity.services.filter_processes import ProcessPipeline
from continuity.services.filter_setup import FilterService
from continuity.services.ingest import IngestService
from continuity.services.outbound_filter import PipelineOutboundFilter
from continuity.store.factory import open_store
from continuity.store.group_commit import GroupCommitter
from continuity.store.protocol import Store
from webmail.app import create_app
from webmail.context import WebContext
from webmail.mail.services import WebmailServices
from webmail.mail.wiring import build_webmail_services, webmail_tasks

log = logging.getLogger("continuity")

_SWEEP_INTERVAL = 60.0


@dataclass
class Running:
    """Handles to a started appliance (used by serve and by tests)."""

    store: Store
    smtp: SmtpListener
    web: WebListener
    directory: DirectoryCache
    committer: GroupCommitter[IncomingMessage]
    lock: DataDirLock
    smtp_address: HostPort
    web_address: HostPort
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    # Failover: controller, monitor, gateway relay, metrics.
    failover: FailoverServices | None = None
    # Feeds and compromise signals: relay listener, relay worker, signals, IMAP checks.
    feeds: FeedServices | None = None
    webmail: WebmailServices | None = None
    # The security filter pipeline; None when [filters] enabled = false.
    filters: FilterService | None = None
    # The worker processes that parse, judge and render every message.
    workers: ProcessPipeline | None = None


async def start(settings: Settings) -> Running:
    """Open the store, start the listeners and background tasks."""
    lock = DataDirLock(settings.data_dir)
    lock.acquire()
    try:
        return await _start_locked(settings, lock)
    except BaseException:
        lock.release()
        raise


async def _start_locked(settings: Settings, lock: DataDirLock) -> Running:
    tls = None
    if settings.smtp.tls_cert is not None and settings.smtp.tls_key is not None:
        tls = server_context(settings.smtp.tls_cert, settings.smtp.tls_key)
    store = await open_store(settings, recover=True)
    directory = DirectoryCache(store.mailboxes)
    await directory.start()
    # Two batches in flight: one's bodies are flushed while the other's rows commit.
    committer: GroupCommitter[IncomingMessage] = GroupCommitter(
        store.messages.commit, settings.storage.group_commit_max, in_flight=2
    )
    # --- failover: state loaded before ingest, whose gateway routing follows it ---
    failover = build_failover(settings, store, drain=committer.drain)
    await failover.controller.load()
    limits = settings.smtp.content_limits
    # --- filters: the one pipeline for ingest, outbound (running.filters.pipeline) and replay ---
    # Every message is parsed and judged in the worker processes, never in this one; the
    # webmail's rendering and indexing run there too, so the workers run even with the filters off.
    filters = FilterService(settings, store.filter_memory, store.mailboxes) if settings.filters.enabled else None
    if filters is not None:
        await filters.start()
    workers = ProcessPipeline(
        settings,
        settings.filters.worker_count,
        memory=filters.memory if filters is not None else None,
        idle_stop=False,
    )
    workers.start()
    judge = workers if filters is not None else None
    # --- replay: the replayer judges every message again with the same workers ---
    if failover.replay is not None:
        failover.replay.use_pipeline(judge)
    # --- feeds and signals: the signals hear about every committed message ---
    signals, signal_notifier = build_signals(settings, store, directory)
    ingest = IngestService(
        domains=frozenset(settings.domains),
        directory=directory,
        committer=committer,
        messages=store.messages,
        content_limits=limits,
        hostname=settings.smtp.hostname,
        route=failover.gate.initial_state,
        pipeline=judge,
        observer=signals.observe if signals is not None else None,
    )
    limiter = ClientLimiter(
        ClientLimitPolicy.build(
            settings.smtp.max_sessions_per_ip,
            settings.smtp.max_messages_per_ip_per_minute,
            settings.smtp.limit_exempt_networks,
        ),
        time.monotonic,
    )
    # --- webmail: its services, mounted on the web listener; tasks started below ---
    webmail = None
    if settings.webmail.enabled:
        outbound_filter = PipelineOutboundFilter(judge) if judge is not None else None
        webmail = build_webmail_services(
            settings, store, WorkerContentReader(workers), outbound_filter=outbound_filter, verdicts=store.verdicts
        )
    smtp = SmtpListener(settings.smtp, ingest, limiter, limits, tls)
    smtp_bound = await smtp.start()
    web = WebListener(
        create_app(WebContext(settings=settings, store=store, failover=failover, webmail=webmail, signals=signals)),
        settings.web.listen_address,
    )
    try:
        web_bound = await web.start()
    except (OSError, SystemExit) as exc:
        await smtp.stop(0)
        await workers.close()
        raise OSError(f"cannot listen for HTTP on {settings.web.listen}: {exc}") from None
    running = Running(store, smtp, web, directory, committer, lock, HostPort(*smtp_bound), HostPort(*web_bound))
    running.tasks.append(asyncio.create_task(_sweep(limiter), name="limit-sweep"))
    # --- failover ---
    running.failover = failover
    running.tasks += start_tasks(failover)
    log.info(
        "failover: state %s since %s, mode %s, monitor %s",
        failover.controller.record.state.value,
        since_text(failover.controller.record),
        settings.failover.mode.value,
        "probing " + settings.primary.host if failover.probes is not None else "not probing (no primary)",
    )
    running.filters = filters
    running.workers = workers
    # --- feeds and signals ---
    try:
        feeds = await start_feeds(
            settings,
            store,
            ingest,
            directory,
            signals,
            signal_notifier,
            lambda: failover.controller.record.state is FailoverState.COMPROMISED,
            tls,
        )
    except BaseException:
        await smtp.stop(0)
        await web.stop()
        for task in running.tasks:
            task.cancel()
        await workers.close()
        raise
    running.feeds = feeds
    running.tasks += start_feed_tasks(feeds)
    # --- directory sync: off unless [directory] source names AD or Entra ---
    if settings.directory.source is not SourceKind.NONE:
        sync = build_sync(settings, store, build_notifier(settings), directory.refresh)
        running.tasks.append(
            asyncio.create_task(sync_periodically(sync, settings.directory.interval), name="directory-sync")
        )
    # --- webmail ---
    if webmail is not None:
        running.webmail = webmail
        running.tasks += [asyncio.create_task(work, name=name) for name, work in webmail_tasks(webmail)]
    mode = "standalone (no primary configured)" if not settings.primary.configured else settings.primary.host
    log.info(
        "ready: SMTP on %s%s, web on %s, %d addresses in the directory, domains %s, primary %s",
        running.smtp_address,
        " with STARTTLS" if tls else "",
        running.web_address,
        len(directory.entries),
        ", ".join(settings.domains) or "(none)",
        mode,
    )
    if not settings.domains:
        log.warning("no protected domains configured: every recipient will be refused")
    return running


async def _sweep(limiter: ClientLimiter) -> None:
    while True:
        await asyncio.sleep(_SWEEP_INTERVAL)
        limiter.sweep()


async def stop(running: Running, grace: float) -> None:
    """Drain SMTP, stop the web tier, flush commits and close the store."""
    log.info("shutting down: finishing SMTP transactions in flight (up to %.0fs)", grace)
    await running.smtp.stop(grace)
    if running.feeds is not None:
        await running.feeds.stop_listening(grace)
    await running.web.stop()
    for task in running.tasks:
        task.cancel()
    await asyncio.gather(*running.tasks, return_exceptions=True)
    if running.failover is not None:
        await running.failover.close()
    if running.feeds is not None:
        await running.feeds.close()
    await running.directory.stop()
    await running.committer.drain()
    if running.workers is not None:
        await running.workers.close()
    if running.filters is not None:
        await running.filters.stop()
    await running.store.close()
    running.lock.release()
    log.info("stopped")


async def serve(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT, then shut down gracefully.

    The signal handlers go in first, so a SIGTERM during start-up also ends in a clean stop.
    """
    stop_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop_requested.set)
    try:
        running = await start(settings)
        try:
            await stop_requested.wait()
        finally:
            await stop(running, settings.smtp.shutdown_grace)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
