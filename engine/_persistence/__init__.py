"""Persistence and visibility: the SQLite file every part of the engine shares.

``store.Store`` runs the history service's state changes in group-committed transactions
(``transactions.Tx``) and serves reads; ``schema`` holds the tables and their migrations,
``connection`` opens SQLite the engine's way, ``writer_lock`` takes turns between processes,
``list_filter`` turns Temporal's list filter (visibility queries) into SQL.
"""
