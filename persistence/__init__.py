"""Persistence: the database below the write and read sides.

Database settings and connections, the audited event recorders and what an append writes
besides its events, schema versions, bulk loads, the SQL dialects and the reminder outbox."""
