"""The daemons around schemaless's core: the indexer worker, the backfill and the cleaner.

They hold the loops, claims, checkpoints and signal handling; the rows they write are computed
by :class:`schemaless.index_writer.IndexWriter`, the one copy of that logic.
"""
