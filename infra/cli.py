"""The `cohortline` command line."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from infra.config import ConfigError, Settings, load_settings
from infra.migrations import SchemaNotCurrent

log = logging.getLogger("cohortline")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "serve" or (args.command == "demo" and args.serve):
        from infra.server import use_multiprocess_metrics

        use_multiprocess_metrics()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "services":
        from infra.services import main as services_main

        return services_main([args.action, *args.names])
    try:
        settings = load_settings()
    except ConfigError as e:
        print(f"cohortline: configuration error: {e}", file=sys.stderr)
        return 2
    from api.errors import backend_unavailable
    from projections.search import StaleIndex

    try:
        return args.handler(settings, args)
    except (SchemaNotCurrent, StaleIndex) as e:
        print(f"cohortline: {e}", file=sys.stderr)
        return 2
    except Exception as e:
        if not backend_unavailable(e):
            raise
        print(
            f"cohortline: a backend is unreachable ({type(e).__name__}: {e}); start it, or check "
            "COHORTLINE_DATABASE_URL, COHORTLINE_KAFKA_URL and COHORTLINE_ELASTICSEARCH_URL",
            file=sys.stderr,
        )
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cohortline", description="Event-sourced retention analytics")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the HTTP API (and, embedded, the projections)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--workers", type=int, default=os.cpu_count() or 2, help="API worker processes (default: cores)"
    )
    serve.add_argument("--open", action="store_true", help="no API keys; local use only, binds to loopback")
    serve.add_argument(
        "--no-projections",
        action="store_true",
        help="embedded mode: serve only; another process runs projections",
    )
    serve.set_defaults(handler=_serve)

    commands.add_parser("migrate", help="upgrade the database schema to this version").set_defaults(
        handler=_migrate
    )
    relay = commands.add_parser("relay", help="publish the event store's log to Kafka")
    relay.set_defaults(handler=_relay)
    worker = commands.add_parser("worker", help="run the Faust projection worker")
    worker.set_defaults(handler=_worker)
    for command in (relay, worker):
        command.add_argument(
            "--metrics-port",
            type=int,
            help="serve Prometheus metrics at http://HOST:PORT/metrics (default: off)",
        )
        command.add_argument(
            "--metrics-host", default="127.0.0.1", help="with --metrics-port (default: loopback only)"
        )
    demo = commands.add_parser(
        "demo", help="import the shipped Online Retail history (or --synthetic) and project it on SQLite"
    )
    demo.add_argument(
        "--serve", action="store_true", help="then keep serving the dashboard on it (open mode)"
    )
    demo.add_argument("--host", default="127.0.0.1", help="with --serve; loopback only")
    demo.add_argument("--port", type=int, default=8000, help="with --serve")
    demo.add_argument(
        "--data",
        type=Path,
        metavar="PATH",
        help="the Online Retail CSV(.gz) to import (default: the copy shipped in data/online_retail)",
    )
    demo.add_argument(
        "--synthetic", action="store_true", help="the small synthetic shop history instead of real data"
    )
    demo.set_defaults(handler=_demo)

    importing = commands.add_parser(
        "import", help="load history from a file into the store (or over HTTP), with a progress bar"
    )
    importing.add_argument(
        "kind",
        choices=("online-retail", "cdnow", "ndjson"),
        help="online-retail: UCI Online Retail CSV; cdnow: CDNOW master CSV; ndjson: envelopes or Segment messages",
    )
    importing.add_argument("path", type=Path, help="the file; .gz is read gunzipped")
    importing.add_argument(
        "--batch-size", type=int, default=1000, help="events recorded together (at most 1000 with --url)"
    )
    importing.add_argument("--url", help="post to URL/v1/events instead of writing to the configured store")
    importing.add_argument("--key", help="with --url: a producer key (default: $COHORTLINE_API_KEY)")
    importing.add_argument(
        "--mapping",
        type=Path,
        metavar="TOML",
        help="ndjson: the Segment mapping file (default: COHORTLINE_SEGMENT_MAPPING's, else the built-in one)",
    )
    importing.set_defaults(handler=_import)

    audit = commands.add_parser("audit", help="auditors' tools over the event store")
    audit_actions = audit.add_subparsers(dest="action", required=True)
    audit_actions.add_parser(
        "verify", help="walk the tamper-evidence chain; exit 1 if it is broken"
    ).set_defaults(handler=_audit_verify)
    export = audit_actions.add_parser("export", help="the global log as NDJSON on standard output")
    export.add_argument("--after", type=int, default=0, help="only events above this position")
    export.set_defaults(handler=_audit_export)

    rebuild = commands.add_parser("rebuild", help="rebuild a projection beside the live one and switch")
    rebuild.add_argument("name", help="the projection, e.g. analytics")
    rebuild.set_defaults(handler=_rebuild)

    erase = commands.add_parser("erase", help="erase a user's personal data (crypto-shredding)")
    erase.add_argument("user_id")
    erase.set_defaults(handler=_erase)

    services = commands.add_parser(
        "services", help="install, start and stop local PostgreSQL, Kafka, Elasticsearch"
    )
    services.add_argument("action", choices=("up", "down", "status", "env"))
    services.add_argument(
        "names", nargs="*", metavar="SERVICE", help="up/down only these: postgresql, kafka, elasticsearch"
    )

    letters = commands.add_parser("dead-letters", help="what the projections parked, and its retry")
    letter_actions = letters.add_subparsers(dest="action", required=True)
    listing = letter_actions.add_parser("list", help="the dead letters, one JSON object a line")
    listing.add_argument("--projection", help="only this projection's")
    listing.set_defaults(handler=_dead_letters_list)
    retry = letter_actions.add_parser(
        "retry", help="apply dead letters again, each exactly once; exit 1 if any fails again"
    )
    retry.add_argument("--projection", help="only this projection's")
    retry.add_argument("ids", nargs="*", type=int, metavar="ID", help="only these (default: all)")
    retry.set_defaults(handler=_dead_letters_retry)
    return parser


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from infra.server import serve

    if not settings.api_keys and not args.open:
        print(
            "cohortline: no API keys: set COHORTLINE_API_KEYS (e.g. k1:producer,k2:reader+auditor) "
            "or pass --open for local use without keys",
            file=sys.stderr,
        )
        return 2
    if args.open and not ipaddress.ip_address(_resolve(args.host)).is_loopback:
        print(
            f"cohortline: --open serves without keys and only binds to loopback, not {args.host}",
            file=sys.stderr,
        )
        return 2
    if args.open:
        log.warning("OPEN MODE: serving without API keys on %s (loopback only)", args.host)
    _prepare_schema(settings)  # before forking workers: one migration, or one clear refusal
    return serve(settings, args.host, args.port, args.workers, args.open, projections=not args.no_projections)


def _prepare_schema(settings: Settings) -> None:
    from infra.bootstrap import prepare_schema
    from infra.database import create_database_engine

    engine = create_database_engine(settings.database_url, pool_size=1)
    try:
        prepare_schema(engine)
    finally:
        engine.dispose()


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from infra import migrations
    from infra.database import create_database_engine

    engine = create_database_engine(settings.database_url, pool_size=1)
    try:
        before, after = migrations.upgrade(engine)
        _replace_stale_index(settings, engine)
    finally:
        engine.dispose()
    if before == after:
        print(f"schema already at revision {after}")
        return 0
    print(f"schema upgraded from {before or 'nothing'} to revision {after}")
    replays = migrations.replayed(before, after)
    return _rebuild_all(settings, replays) if replays else 0


def _replace_stale_index(settings: Settings, engine: Any) -> None:
    """A user index whose documents changed shape is made anew from the read models (the services
    refuse to start on it)."""
    if not settings.elasticsearch_url:
        return
    from elasticsearch import Elasticsearch

    from projections.search import ElasticsearchUsers

    with Elasticsearch(settings.elasticsearch_url, request_timeout=30) as client:
        index = ElasticsearchUsers(client, settings.search_index)
        with engine.connect() as conn:
            if index.replace_stale(conn):
                print(
                    f"search index {settings.search_index}: its documents changed shape; reindexed every user"
                )


def _rebuild_all(settings: Settings, names: list[str]) -> int:
    """Replay the read models a migration emptied, each into a scratch copy that then takes over."""
    from infra.bootstrap import build_system

    system = build_system(settings)
    try:
        if system.log_reader().head() == 0:
            return 0
        for name in names:
            print(f"{name}: its read models changed shape; replaying the log into them", file=sys.stderr)
            position = system.rebuilds.run(name)
            print(f"{name}: switched to the rebuilt read models at position {position:,}")
    finally:
        system.close()
    return 0


def _resolve(host: str) -> str:
    return "127.0.0.1" if host == "localhost" else host


def _relay(settings: Settings, args: argparse.Namespace) -> int:
    from infra.audit import SqlAuditTrail
    from infra.bootstrap import prepare_schema
    from infra.database import create_database_engine
    from infra.eventstore import open_event_store, stored_events_table
    from streams.log_reader import LogReader
    from streams.relay import Relay

    if settings.embedded:
        print("cohortline: relay needs COHORTLINE_KAFKA_URL (see `cohortline services env`)", file=sys.stderr)
        return 2
    engine = create_database_engine(settings.database_url, pool_size=2)
    prepare_schema(engine)
    store = open_event_store(engine)
    relay = Relay(
        LogReader(store, SqlAuditTrail(engine, store, stored_events_table(store)).sealed_log),
        engine,
        ",".join(settings.kafka_servers),
        settings.kafka_topic,
        settings.kafka_partitions,
    )
    if not _serve_metrics(args):
        return 2
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    asyncio.run(relay.run(should_stop=lambda: stopping))
    return 0


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from faust import Worker

    from infra.bootstrap import build_system
    from streams.worker import create_worker_app

    if settings.embedded:
        print(
            "cohortline: worker needs COHORTLINE_KAFKA_URL (see `cohortline services env`)", file=sys.stderr
        )
        return 2
    if not _serve_metrics(args):
        return 2
    system = build_system(settings)
    try:
        datadir = Path.cwd() / "var" / "faust"
        datadir.mkdir(parents=True, exist_ok=True)
        app = create_worker_app(
            settings.kafka_servers, settings.kafka_topic, settings.kafka_partitions, system.runners, datadir
        )
        Worker(app, loglevel="INFO").execute_from_commandline()  # leaves by SystemExit when stopped
    finally:
        system.close()
    return 0


def _serve_metrics(args: argparse.Namespace) -> bool:
    """Serve the process's metrics when asked to; False (said on stderr) when the port is taken."""
    if args.metrics_port is None:
        return True
    from streams.metrics import serve_metrics

    try:
        serve_metrics(args.metrics_host, args.metrics_port)
    except OSError as e:
        print(
            f"cohortline: cannot serve metrics on {args.metrics_host}:{args.metrics_port}: {e}",
            file=sys.stderr,
        )
        return False
    return True


def _audit_verify(settings: Settings, args: argparse.Namespace) -> int:
    import json

    from infra.bootstrap import build_system

    system = build_system(settings)
    trail = system.audit
    head = trail.head()
    try:
        verdict = trail.verify(
            lambda at: print(f"verified up to position {at:,} of {head:,}", file=sys.stderr)
        )
    finally:
        system.close()
    print(json.dumps({k: v for k, v in vars(verdict).items() if v is not None}))
    return 0 if verdict.ok else 1


def _audit_export(settings: Settings, args: argparse.Namespace) -> int:
    import json

    from api.event_json import present_event
    from infra.bootstrap import build_system

    system = build_system(settings)
    trail = system.audit
    head = trail.head()
    out = sys.stdout.buffer
    try:
        for n, audited in enumerate(trail.follow(args.after), start=1):
            out.write(json.dumps(present_event(audited), separators=(",", ":")).encode() + b"\n")
            if n % 100_000 == 0:
                print(f"exported up to position {audited.position:,} of {head:,}", file=sys.stderr)
        out.flush()
    except BrokenPipeError:
        return 0
    finally:
        system.close()
    return 0


def _rebuild(settings: Settings, args: argparse.Namespace) -> int:
    from infra.bootstrap import build_system
    from projections.admin import RebuildRunning, UnknownProjection

    system = build_system(settings)

    def show(p: Any) -> None:
        print(
            f"rebuilt to position {p.position:,} of {p.target:,} ({p.events_per_s:,.0f} events/s)",
            file=sys.stderr,
        )

    try:
        position = system.rebuilds.run(args.name, progress=show)
    except UnknownProjection:
        known = ", ".join(r.name for r in system.runners)
        print(f"cohortline: no projection named {args.name!r}; projections: {known}", file=sys.stderr)
        return 2
    except RebuildRunning as e:
        print(
            f"cohortline: not rebuilding {args.name!r}: {e}; try again once it has finished", file=sys.stderr
        )
        return 2
    finally:
        system.close()
    print(f"{args.name}: switched to the rebuilt read models at position {position:,}")
    return 0


def _erase(settings: Settings, args: argparse.Namespace) -> int:
    import json

    from domain.errors import UnknownUser
    from infra.bootstrap import build_system

    system = build_system(settings)
    try:
        print(json.dumps(system.erasure.erase(args.user_id)))
    except UnknownUser:
        print(f"cohortline: no events for user {args.user_id!r}", file=sys.stderr)
        return 2
    finally:
        system.close()
    return 0


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from infra.demo import run_demo

    if args.serve and not ipaddress.ip_address(_resolve(args.host)).is_loopback:
        print(
            f"cohortline: demo --serve is open mode and binds to loopback only, not {args.host}",
            file=sys.stderr,
        )
        return 2
    if args.synthetic and args.data is not None:
        print("cohortline: demo --synthetic makes its own data; --data is for the real one", file=sys.stderr)
        return 2
    from infra.importers import ImportFailed

    try:
        demo_settings = run_demo(settings, data=args.data, synthetic=args.synthetic)
    except (ImportFailed, FileNotFoundError) as e:
        print(f"cohortline demo: {e}", file=sys.stderr)
        return 2
    if not args.serve:
        return 0
    from infra.server import serve

    print(f"Dashboard: http://{args.host}:{args.port}/  (open mode, Ctrl-C stops)", flush=True)
    return serve(demo_settings, args.host, args.port, workers=2, open_mode=True, projections=True)


def _import(settings: Settings, args: argparse.Namespace) -> int:
    from infra.bootstrap import build_system
    from infra.importers import ImportFailed, opener
    from infra.importers.loading import HTTP_MAX_EVENTS, HttpSink, Interrupted, StoreSink, load, project

    if not args.path.is_file():
        print(f"cohortline import: no file {args.path}", file=sys.stderr)
        return 2
    if args.batch_size < 1 or (args.url and args.batch_size > HTTP_MAX_EVENTS):
        print(
            f"cohortline import: --batch-size must be 1 to {HTTP_MAX_EVENTS:,} with --url (the most "
            "POST /v1/events takes), and at least 1 without",
            file=sys.stderr,
        )
        return 2
    mapping = settings.segment_mapping
    if args.kind == "ndjson" and args.mapping is not None:
        from api.segment.mapping import MappingFileError, load_mapping

        try:
            mapping = load_mapping(args.mapping)
        except MappingFileError as e:
            print(f"cohortline import: --mapping: {e}", file=sys.stderr)
            return 2
    system = None
    try:
        if args.url:
            sink: Any = HttpSink(args.url, args.key or os.environ.get("COHORTLINE_API_KEY"))
        else:
            system = build_system(settings)
            sink = StoreSink(system.event_store)
        try:
            outcome = load(
                opener(args.kind, args.path, mapping),
                sink,
                args.batch_size,
                description=f"import {args.kind}",
            )
        except Interrupted as stopped:
            done = stopped.outcome
            print(f"cohortline import: {stopped}", file=sys.stderr)
            print(
                f"cohortline import: stopped after {done.read:,} {done.unit} (appended {done.appended:,}, "
                f"duplicates {done.duplicates:,}); "
                + ("" if stopped.by_user else "nothing of the batch that failed was written; ")
                + "a rerun appends only what is missing",
                file=sys.stderr,
            )
            return 130 if stopped.by_user else 2
        if system is not None and settings.embedded:
            try:
                projected = project(system)
            except ImportFailed as e:
                print(outcome.summary())
                print(f"cohortline import: {e}", file=sys.stderr)
                return 1
            print(f"projected {projected.events:,} events in {projected.seconds:.1f} s", file=sys.stderr)
    finally:
        if system is not None:
            system.close()
    print(outcome.summary())
    return 0


def _dead_letters_list(settings: Settings, args: argparse.Namespace) -> int:
    import json

    from infra.bootstrap import build_system
    from projections.dead_letters import listed

    system = build_system(settings)
    try:
        if not _known_projection(system, args.projection):
            return 2
        with system.engine.connect() as conn:
            letters = listed(conn, args.projection)
    finally:
        system.close()
    for letter in letters:
        print(json.dumps(_present_dead_letter(letter)))
    print(f"{len(letters)} dead letter(s)", file=sys.stderr)
    return 0


def _present_dead_letter(letter: Any) -> dict[str, Any]:
    from domain.envelope import format_timestamp

    return {
        "id": letter.id,
        "projection": letter.projection,
        "partition": letter.partition,
        "position": letter.position,
        "kind": letter.kind,
        "reason": letter.reason,
        "failed_at": format_timestamp(letter.failed_at),
        "retries": letter.retries,
        "last_retried_at": format_timestamp(letter.last_retried_at),
    }


def _dead_letters_retry(settings: Settings, args: argparse.Namespace) -> int:
    import json
    from collections import Counter
    from functools import partial

    from infra.bootstrap import build_system
    from projections.dead_letters import DeadLetterRetry

    system = build_system(settings)
    try:
        if not _known_projection(system, args.projection):
            return 2
        event_at = partial(_event_at, system.log_reader())
        retried = DeadLetterRetry(system.engine, system.runners, event_at, _decode_again).run(
            args.projection, args.ids
        )
    finally:
        system.close()
    for result in retried:
        print(json.dumps(vars(result)))
    outcomes = Counter(r.outcome for r in retried)
    print(
        f"{outcomes['applied']} applied, {outcomes['failed']} failed again, "
        f"{outcomes['gone']} retried already",
        file=sys.stderr,
    )
    return 1 if outcomes["failed"] else 0


def _known_projection(system: Any, name: str | None) -> bool:
    known = [r.name for r in system.runners]
    if name is None or name in known:
        return True
    print(f"cohortline: no projection named {name!r}; projections: {', '.join(known)}", file=sys.stderr)
    return False


def _event_at(reader: Any, position: int) -> Any:
    """The event at `position`, read as the projections read the log."""
    found = reader.read(position - 1, 1)
    if not found or found[0].position != position:
        raise LookupError(f"no event at position {position} in the log")
    return found[0]


def _decode_again(letter: Any) -> list[Any]:
    """The events of a message that could not be read, from its stored payload."""
    from streams.messages import to_deliveries

    deliveries = to_deliveries(letter.partition, letter.kafka_offset or 0, (letter.payload or "").encode())
    unreadable = [d.error for d in deliveries if d.error]
    if unreadable:
        raise ValueError(unreadable[0])
    return [d.event for d in deliveries if d.event is not None]


if __name__ == "__main__":
    sys.exit(main())
