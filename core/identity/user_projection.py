"""The `users` read model: `users` and `user_personal_access_tokens`, written inline.

`UsersProjection` follows every user event (those of `users` and of
`user_events`); the tables, events and write model are in `users`.
"""

from __future__ import annotations

from donjon.core.events import StoredEvent
from donjon.core.identity import user_events as ev
from donjon.core.identity.users import (
    ACTIVE,
    HUMAN,
    INACTIVE,
    INITIAL,
    LOCKED,
    MACHINE,
    HumanAdded,
    MachineAdded,
    PersonalAccessTokenAdded,
    PersonalAccessTokenRemoved,
    UserRemoved,
    parse_time,
    personal_access_tokens_table,
    users_table,
)
from donjon.core.projections.base import Projection, handles
from donjon.core.projections.statements import Patch, PatchWhere, Put, Remove, RemoveWhere


class UsersProjection(Projection):
    """`users` and `user_personal_access_tokens`, written in the push transaction."""

    name = "users"
    version = 4
    inline = True
    tables = (users_table, personal_access_tokens_table)

    @staticmethod
    def key(e: StoredEvent) -> dict[str, str]:
        return {"instance_id": e.instance_id, "id": e.aggregate_id}

    @staticmethod
    def touch(e: StoredEvent, **values: object) -> Patch:
        """Set `values` on the user row and advance its change date and sequence."""
        return Patch(
            users_table,
            UsersProjection.key(e),
            {**values, "changed_at": e.created_at, "sequence": e.sequence},
        )

    @staticmethod
    def _base(e: StoredEvent) -> dict[str, object]:
        return {
            **UsersProjection.key(e),
            "resource_owner": e.owner,
            "username": e.payload["username"],
            "created_at": e.created_at,
            "changed_at": e.created_at,
            "sequence": e.sequence,
            **{c: "" for c in _TEXT_COLUMNS},
            "email_verified": False,
            "phone_verified": False,
            "password_change_required": False,
            "password_changed_at": None,
            "password_check_failed_count": 0,
        }

    @handles(HumanAdded.TYPE)
    def human_added(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        p = e.payload
        row = self._base(e)
        row.update(
            type=HUMAN,
            state=ACTIVE if p.get("password_hash") or p.get("email_verified") else INITIAL,
            first_name=p["first_name"],
            last_name=p["last_name"],
            nick_name=p.get("nick_name", ""),
            display_name=p.get("display_name", "") or f"{p['first_name']} {p['last_name']}".strip(),
            preferred_language=p.get("preferred_language", ""),
            gender=p.get("gender", ""),
            email=p.get("email", ""),
            email_verified=p.get("email_verified", False),
            phone=p.get("phone", ""),
            phone_verified=p.get("phone_verified", False),
            password_hash=p.get("password_hash", ""),
            password_change_required=p.get("password_change_required", False),
            password_changed_at=e.created_at if p.get("password_hash") else None,
        )
        return [Put(users_table, row)]

    @handles(MachineAdded.TYPE)
    def machine_added(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        p = e.payload
        row = self._base(e)
        row.update(
            type=MACHINE,
            state=ACTIVE,
            name=p["name"],
            description=p.get("description", ""),
            access_token_type=p.get("access_token_type", "bearer"),
        )
        return [Put(users_table, row)]

    @handles(PersonalAccessTokenAdded.TYPE)
    def pat_added(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        p = e.payload
        return [
            Put(
                personal_access_tokens_table,
                {
                    "instance_id": e.instance_id,
                    "id": p["token_id"],
                    "user_id": e.aggregate_id,
                    "digest": p["digest"],
                    "expiration": parse_time(p.get("expiration", "")),
                    "scopes": " ".join(p.get("scopes", [])),
                    "created_at": e.created_at,
                },
            ),
            self.touch(e),
        ]

    @handles(PersonalAccessTokenRemoved.TYPE)
    def pat_removed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [
            Remove(
                personal_access_tokens_table,
                {"instance_id": e.instance_id, "id": e.payload["token_id"]},
            ),
            self.touch(e),
        ]

    @handles(UserRemoved.TYPE)
    def removed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [
            Remove(users_table, self.key(e)),
            RemoveWhere(
                personal_access_tokens_table,
                {"instance_id": e.instance_id, "user_id": e.aggregate_id},
            ),
        ]

    # -- changes (user_events) -----------------------------------------------------------

    def _activate_initial(self, e: StoredEvent) -> PatchWhere:
        """A user still in its initial state becomes active (a password, a verified email)."""
        return PatchWhere(users_table, {**self.key(e), "state": INITIAL}, {"state": ACTIVE})

    @handles(ev.HumanProfileChanged.TYPE, ev.MachineChanged.TYPE)
    def fields_changed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [self.touch(e, **{k: v for k, v in e.payload.items() if v is not None})]

    @handles(ev.UsernameChanged.TYPE)
    def username_changed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [self.touch(e, username=e.payload["username"])]

    @handles(ev.HumanEmailChanged.TYPE)
    def email_changed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [self.touch(e, email=e.payload["email"], email_verified=False)]

    @handles(ev.HumanEmailVerified.TYPE)
    def email_verified(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [self.touch(e, email_verified=True), self._activate_initial(e)]

    @handles(ev.HumanPhoneChanged.TYPE)
    def phone_changed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [self.touch(e, phone=e.payload["phone"], phone_verified=False)]

    @handles(ev.HumanPhoneVerified.TYPE)
    def phone_verified(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [self.touch(e, phone_verified=True)]

    @handles(ev.HumanPhoneRemoved.TYPE)
    def phone_removed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [self.touch(e, phone="", phone_verified=False)]

    @handles(ev.HumanPasswordChanged.TYPE)
    def password_changed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [
            self.touch(
                e,
                password_hash=e.payload["password_hash"],
                password_change_required=e.payload.get("change_required", False),
                password_changed_at=e.created_at,
            ),
            self._activate_initial(e),
        ]

    @handles(ev.HumanPasswordHashUpdated.TYPE)
    def password_rehashed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        # The same password: neither the change date nor passwordChanged move.
        return [Patch(users_table, self.key(e), {"password_hash": e.payload["password_hash"]})]

    # A login's checks leave the change date and sequence alone: they change
    # nothing `details` reports. The count is what the lockout reads.
    @handles(ev.HumanPasswordCheckFailed.TYPE)
    def password_check_failed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        count = users_table.c.password_check_failed_count
        return [Patch(users_table, self.key(e), {"password_check_failed_count": count + 1})]

    @handles(ev.HumanPasswordCheckSucceeded.TYPE)
    def password_check_succeeded(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [Patch(users_table, self.key(e), {"password_check_failed_count": 0})]

    @handles(ev.UserLocked.TYPE)
    def locked(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [self.touch(e, state=LOCKED)]

    @handles(ev.UserDeactivated.TYPE)
    def deactivated(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [self.touch(e, state=INACTIVE)]

    @handles(ev.UserUnlocked.TYPE)
    def unlocked(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [self.touch(e, state=ACTIVE, password_check_failed_count=0)]

    @handles(ev.UserReactivated.TYPE)
    def reactivated(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [self.touch(e, state=ACTIVE)]

    @handles(ev.MachineSecretSet.TYPE)
    def secret_set(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [self.touch(e, secret_digest=e.payload["digest"])]

    @handles(ev.MachineSecretRemoved.TYPE)
    def secret_removed(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [self.touch(e, secret_digest="")]

    # Events that change the user without a column here still advance its
    # change date and sequence, so `details` reports the aggregate's sequence.
    @handles(
        ev.HumanEmailCodeAdded.TYPE,
        ev.HumanPhoneCodeAdded.TYPE,
        ev.HumanPasswordCodeAdded.TYPE,
        "user.machine.key.added",
        "user.machine.key.removed",
        "user.metadata.set",
        "user.metadata.removed",
    )
    def touched(self, e: StoredEvent):  # type: ignore[no-untyped-def]
        return [self.touch(e)]


_TEXT_COLUMNS = (
    "first_name",
    "last_name",
    "nick_name",
    "display_name",
    "preferred_language",
    "gender",
    "email",
    "phone",
    "password_hash",
    "name",
    "description",
    "access_token_type",
    "secret_digest",
)
