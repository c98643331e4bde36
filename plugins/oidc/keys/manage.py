"""Managing an instance's web keys by hand (the WebKeyService), beside automatic rotation.

Commands validate against `WebKeysState`, the web key events of the
instance's aggregate, and push with its sequence, so two administrators (or
an administrator and a rotating process) never act on a stale view:

- `create`: a new key, published at once (state `next`, ZITADEL's
  `STATE_INITIAL`), signing nothing yet;
- `activate`: the key signs from now on and sets the instance's algorithm
  (rotation makes its successors like it); the previously active key turns
  inactive and stays published until its tokens have expired. Activating
  the active key changes nothing;
- `remove`: any key but the active one leaves the JWKS at once (tokens it
  signed no longer verify).

The key ring makes one successor per active key, claiming
`oidc_web_key_activated` = `next-for:<active kid>`; activating a key and
removing a next key release that claim, so the ring can make the active
key a (new) successor.
"""

from __future__ import annotations

from donjon.core.events import AggregateChanges, Event, RemoveUnique, StoredEvent
from donjon.core.identity.writemodel import WriteModel, applies
from donjon.core.instance import AGGREGATE as INSTANCE
from donjon.plugins.oidc.keys.events import (
    ACTIVE,
    INACTIVE,
    NEXT,
    WebKeyActivated,
    WebKeyAdded,
    WebKeyRemoved,
)
from donjon.plugins.oidc.keys.ring import UNIQUE_ACTIVATED, successor_claim


class WebKeyPrecondition(ValueError):
    """A change the rules above refuse; the message says why."""


class WebKeyNotFound(LookupError):
    """No key of the instance has this id."""


class WebKeysState(WriteModel):
    """The instance's web keys: key id -> state (`next`, `active`, `inactive`)."""

    aggregate_type = INSTANCE

    def __init__(self, instance_id: str, aggregate_id: str) -> None:
        super().__init__(instance_id, aggregate_id)
        self.keys: dict[str, str] = {}

    @applies(WebKeyAdded.TYPE)
    def on_added(self, e: StoredEvent) -> None:
        self.keys[e.payload["key_id"]] = NEXT

    @applies(WebKeyActivated.TYPE)
    def on_activated(self, e: StoredEvent) -> None:
        for key_id, state in self.keys.items():
            if state == ACTIVE:
                self.keys[key_id] = INACTIVE
        self.keys[e.payload["key_id"]] = ACTIVE

    @applies(WebKeyRemoved.TYPE)
    def on_removed(self, e: StoredEvent) -> None:
        self.keys.pop(e.payload["key_id"], None)


def _changes(state: WebKeysState, event: Event, *released: str) -> AggregateChanges:
    return AggregateChanges(
        state.aggregate(owner=state.instance_id),
        [event],
        expected_sequence=state.sequence,
        unique=[RemoveUnique(UNIQUE_ACTIVATED, value) for value in released],
    )


def create(state: WebKeysState, added: WebKeyAdded) -> AggregateChanges:
    return _changes(state, added)


def activate(state: WebKeysState, key_id: str) -> AggregateChanges | None:
    """The activation of `key_id`; None when it is the active key already."""
    current = state.keys.get(key_id)
    if current is None:
        raise WebKeyNotFound(key_id)
    if current == ACTIVE:
        return None
    return _changes(state, WebKeyActivated(key_id=key_id), successor_claim(key_id))


def remove(state: WebKeysState, key_id: str) -> AggregateChanges:
    current = state.keys.get(key_id)
    if current is None:
        raise WebKeyNotFound(key_id)
    if current == ACTIVE:
        raise WebKeyPrecondition("the active web key cannot be deleted: activate another key first")
    active = next((k for k, v in state.keys.items() if v == ACTIVE), None)
    released = [successor_claim(active)] if current == NEXT and active else []
    return _changes(state, WebKeyRemoved(key_id=key_id), *released)
