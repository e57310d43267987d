"""Adapters: the ledger's side of other systems (mail servers), behind plain calls."""
