"""Logging in with an API key, and out."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for

from console.access import back_to, log_in, log_out, page, public_page
from ledger_core.access import Role
from ledger_core.errors import Unauthenticated

blp = Blueprint("auth", __name__)
MAX_SECRET_LENGTH = 200


@blp.route("/login", methods=["GET", "POST"])
@public_page
def login() -> Any:
    target = request.values.get("next", "")
    if not back_to(target):
        target = ""
    if request.method == "GET":
        return render_template("login.html", next=target, error=None)
    secret = request.form.get("api_key", "")
    try:
        if not secret.strip() or len(secret) > MAX_SECRET_LENGTH:
            raise Unauthenticated("the API key is not valid")
        log_in(secret)
    except Unauthenticated:
        return render_template("login.html", next=target, error="That API key is not valid."), 401
    return redirect(back_to(target) or url_for("accounts.customers"))


@blp.route("/logout", methods=["POST"])
@page(Role.SERVICE, Role.FINANCE, Role.AUDITOR)
def logout() -> Any:
    log_out()
    return redirect(url_for("auth.login"))
