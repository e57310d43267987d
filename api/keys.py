"""/v1/keys: API keys, for admins. A new key's secret is in the answer to its creation only."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from marshmallow import Schema, fields, validate

from api.accounts import Blueprint, service
from api.auth import allow
from api.schemas import choice_field, text_field
from ledger_core import commands
from ledger_core.access import MAX_KEY_ACCOUNTS, MAX_KEY_NAME_LENGTH, ApiKey, Role
from ledger_core.account import ACCOUNT_ID_PATTERN
from service.wire import UtcDateTime

blp = Blueprint("keys", __name__, url_prefix="/v1/keys", description="API keys and their roles (admins)")


class NewKeySchema(Schema):
    role = choice_field(Role, required=True)
    name = text_field(MAX_KEY_NAME_LENGTH, load_default="")
    accounts = fields.List(fields.String(validate=validate.Regexp(ACCOUNT_ID_PATTERN)),
                           validate=validate.Length(min=1, max=MAX_KEY_ACCOUNTS),
                           metadata={"description": "the accounts this key sees; leave out for every account"})


class KeySchema(Schema):
    key_id = fields.String()
    name = fields.String()
    role = fields.String()
    accounts = fields.List(fields.String(), allow_none=True)
    issued_at = UtcDateTime()
    revoked_at = UtcDateTime(allow_none=True)


class IssuedKeySchema(KeySchema):
    secret = fields.String(metadata={"description": "shown once: send it as Authorization: Bearer <secret>"})


class KeyListSchema(Schema):
    items = fields.List(fields.Nested(KeySchema))


def key_of(key: ApiKey) -> dict[str, Any]:
    return {"key_id": key.key_id, "name": key.name, "role": key.role,
            "accounts": None if key.accounts is None else list(key.accounts),
            "issued_at": key.issued_at, "revoked_at": key.revoked_at}


@blp.route("")
class Keys(MethodView):
    @allow(Role.ADMIN, all_accounts=True)
    @blp.arguments(NewKeySchema)
    @blp.response(201, IssuedKeySchema)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Issue a key: a role, and optionally the accounts it is limited to."""
        issued = service().handle(commands.IssueKey(**body))
        return {**key_of(issued.key), "secret": issued.secret}

    @allow(Role.ADMIN, all_accounts=True)
    @blp.response(200, KeyListSchema)
    def get(self) -> dict[str, Any]:
        """Every key issued, revoked ones included; never a secret."""
        return {"items": [key_of(k) for k in service().commands.api_keys()]}


@blp.route("/<key_id>/revoke")
class Revoke(MethodView):
    @allow(Role.ADMIN, all_accounts=True)
    @blp.response(200, KeySchema)
    def post(self, key_id: str) -> dict[str, Any]:
        """Revoke a key: it stops working at once."""
        return key_of(service().handle(commands.RevokeKey(key_id)))
