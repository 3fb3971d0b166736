"""Erasure by crypto-shredding: the personal-data fields of events (events.md marks them) are stored
encrypted with a key per user, kept in `cohortline_user_keys`. Erasing a user destroys the key:
the stored events stay byte for byte as they were (so the hash chain still verifies), and their
personal fields read as "[erased]" from then on.

Encryption is AES-256-GCM with a random nonce per value, bound to the event id and field name."""

from __future__ import annotations

import base64
import os
import uuid
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing_sqlalchemy.datastore import SQLAlchemyDatastore
from sqlalchemy import Column, DateTime, Engine, LargeBinary, MetaData, String, Table, select

from domain.catalogue import TYPES
from domain.envelope import parse_envelope
from domain.errors import UnknownUser
from domain.events import Fact
from domain.model import ERASED
from infra.database import read_only

SEALED = "$sealed"

key_metadata = MetaData()
user_keys = Table(
    "cohortline_user_keys",
    key_metadata,
    Column("user_id", String(128), primary_key=True),
    Column("key", LargeBinary, nullable=True),
    Column("created_at", DateTime(), nullable=False),
    Column("destroyed_at", DateTime(), nullable=True),
)

PERSONAL_FIELDS = {name: spec.personal_fields for name, spec in TYPES.items() if spec.personal_fields}


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class UserKeys:
    """Each user's data key: created on first use, destroyed on erasure (and replaced by a fresh
    one if personal data arrives for the user afterwards; what the old key sealed stays erased)."""

    def __init__(self, engine: Engine, datastore: SQLAlchemyDatastore):
        self.engine = engine
        self.read_engine = read_only(engine)
        self.datastore = datastore

    def for_reading(self, user_id: str) -> bytes | None:
        """Read from the table every time (no cache), so an erasure holds in every process at once;
        only events with personal data that are read with it opened pay for the lookup."""
        with self.read_engine.connect() as conn:
            return conn.execute(select(user_keys.c.key).where(user_keys.c.user_id == user_id)).scalar()

    def for_writing(self, user_id: str) -> bytes:
        key = self.for_reading(user_id)
        if key is not None:
            return key
        fresh = AESGCM.generate_key(bit_length=256)
        with self._writing() as conn:
            found = conn.execute(select(user_keys.c.key).where(user_keys.c.user_id == user_id)).first()
            if found is None:
                conn.execute(user_keys.insert().values(user_id=user_id, key=fresh, created_at=_now()))
            elif found.key is None:
                conn.execute(
                    user_keys.update()
                    .where(user_keys.c.user_id == user_id)
                    .values(key=fresh, created_at=_now())
                )
            else:
                fresh = found.key
        return fresh

    def _writing(self) -> AbstractContextManager[Any]:
        """SQLite has one write lock, which an append under lock (domain.application) already holds:
        join its transaction. PostgreSQL keys are written on their own, so no append waits for a
        key row while holding the events table lock."""
        if self.engine.dialect.name == "sqlite":
            return self.datastore.transaction(commit=True)
        return self.engine.begin()

    def destroy(self, user_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                user_keys.update().where(user_keys.c.user_id == user_id).values(key=None, destroyed_at=_now())
            )


class PersonalDataMapper(Mapper):  # type: ignore[type-arg]
    """The library's mapper, sealing personal fields on the way into the store and opening them
    (or reading them as erased) on the way out."""

    keys: UserKeys

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        fields = _personal_fields(domain_event)
        if fields:
            data = dict(domain_event.data)
            key = self.keys.for_writing(domain_event.user_id)
            for name in fields:
                data[name] = self._seal_field(key, domain_event.event_id, name, data[name])
            sealed = object.__new__(type(domain_event))
            object.__setattr__(sealed, "__dict__", {**vars(domain_event), "data": data})
            domain_event = sealed
        return super().to_stored_event(domain_event)

    def to_sealed_domain_event(self, stored_event: StoredEvent) -> Any:
        """The event with its personal fields left sealed: what projections and the relay read
        (they use no personal data, and Kafka never holds it in clear)."""
        return super().to_domain_event(stored_event)

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        event = super().to_domain_event(stored_event)
        if isinstance(event, Fact) and event.user_id is not None:
            sealed = [name for name in PERSONAL_FIELDS.get(event.type_name(), ()) if name in event.data]
            if sealed:
                key = self.keys.for_reading(event.user_id)
                data = dict(event.data)
                for name in sealed:
                    data[name] = self._open_field(key, event.event_id, name, data[name])
                event.__dict__["data"] = data
        return event

    def _seal_field(self, key: bytes, event_id: str, name: str, value: Any) -> Any:
        """An object's values are sealed one by one (its keys stay readable, so an erased object
        keeps its shape); any other value is sealed whole."""
        if isinstance(value, dict):
            return {k: self._seal(key, event_id, f"{name}.{k}", v) for k, v in value.items()}
        return self._seal(key, event_id, name, value)

    def _open_field(self, key: bytes | None, event_id: str, name: str, value: Any) -> Any:
        if _is_sealed(value):
            return self._open(key, event_id, name, value[SEALED])
        if isinstance(value, dict):
            return {
                k: self._open(key, event_id, f"{name}.{k}", v[SEALED]) if _is_sealed(v) else v
                for k, v in value.items()
            }
        return value  # stored before sealing existed

    def _seal(self, key: bytes, event_id: str, name: str, value: Any) -> dict[str, str]:
        nonce = os.urandom(12)
        plain = self.transcoder.encode({"v": value})
        sealed = AESGCM(key).encrypt(nonce, plain, f"{event_id}:{name}".encode())
        return {SEALED: base64.b64encode(nonce + sealed).decode()}

    def _open(self, key: bytes | None, event_id: str, name: str, token: str) -> Any:
        if key is None:
            return ERASED
        raw = base64.b64decode(token)
        try:
            plain = AESGCM(key).decrypt(raw[:12], raw[12:], f"{event_id}:{name}".encode())
        except InvalidTag:  # sealed under a key destroyed since
            return ERASED
        return self.transcoder.decode(plain)["v"]


def _is_sealed(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and SEALED in value


def _personal_fields(event: Any) -> list[str]:
    if not isinstance(event, Fact) or event.user_id is None:
        return []
    return [name for name in PERSONAL_FIELDS.get(event.type_name(), ()) if name in event.data]


class Erasure:
    """Erase a user: record `PersonalDataErased` on their stream, then destroy their key (if the
    second step fails, erasing again finishes it)."""

    def __init__(self, event_store: Any, keys: UserKeys):
        self.event_store = event_store
        self.keys = keys

    def erase(self, user_id: str) -> dict[str, Any]:
        known = bool(self.event_store.stream_events("user", user_id)) or self.keys.for_reading(user_id)
        if not known:
            raise UnknownUser(user_id)
        envelope = parse_envelope(
            {
                "event_id": str(uuid.uuid4()),
                "type": "PersonalDataErased",
                "user_id": user_id,
                "occurred_at": datetime.now(UTC).isoformat(),
                "data": {},
            },
            from_sender=False,
        )
        recorded = self.event_store.record([envelope])
        self.keys.destroy(user_id)
        return {"user_id": user_id, "erased": True, "position": recorded.last_position}
