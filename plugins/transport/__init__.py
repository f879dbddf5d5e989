"""Kafka plumbing shared by the worker and the trainer: one translation of the connection
settings (connection), topic administration (topics), the batch source with its group
membership (source), the batch sink (sink), dead letters, and the HTTP health port."""
