"""ledger_core"""
