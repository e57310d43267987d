"""Exporters: PDF and Excel documents from read models (issue 5)."""
