"""Cluster DNS: answers ``<svc>.<ns>.svc.<domain>`` and friends from the API, forwards the rest."""
