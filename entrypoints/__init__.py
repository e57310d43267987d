"""Entry points: the `ledger` CLI (serve, chores)."""
