"""Scheduled reprocessing of an inbox of APT runs."""
