"""The books: the files autometta alone writes (state, budget, their digests, spend, parking,
the record of a stage run by hand)."""
