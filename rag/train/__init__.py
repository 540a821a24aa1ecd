"""Training the readers (never imported when answering).

``neural``: fine-tune an extractive-QA transformer (the ``rag train-reader`` command);
``negatives``: unanswerable training questions made from answerable ones (near-miss paragraphs,
swapped asked-for things);
``low_overlap``: the answerable questions sharing the fewest words with their answer's sentence, trained twice;
``paraphrases``: hand-written rewrites of training questions (``paraphrases.jsonl``), trained beside the originals;
``precision``: the CPU precision a shipped reader keeps (``inference.json``), measured on SQuAD dev;
``compress``: ship a full fine-tune as a small adapter (truncated SVD of each weight's change);
``features`` and ``fusion``: fit the feature and fused readers' weights; ``tuning``: calibration,
the abstention threshold and the settings file every fit ends in.
"""
