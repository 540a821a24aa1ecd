"""Measuring the pipeline: pure metrics (``metrics``, a leaf every layer may use), question sets
(``datasets``), and the ``rag eval`` run (``plan`` -> ``runner`` -> ``scoring`` -> ``report``,
``plots``). ``reader_table`` puts the readers side by side. Nothing is imported here: the metrics
stay importable without the pipeline."""
